#!/usr/bin/env bash
# Pod-create throughput of several kapi binaries, side by side: each NAME=PATH is started on a
# fresh embedded store on a free loopback port, `kapi-load populate` creates NODES × PPN pods
# over CLIENTS connections as fast as it can, and POST pods' rate, p50, p99 and max are printed;
# the binaries are alternated ROUNDS times so that a noisy machine hurts them alike. Build the
# binaries first (release), e.g. one per commit in its own worktree; stop other work on the
# machine while it runs. Bounded: every run ends at 300 s.
#   LOAD=target/release/kapi-load bash loadtest/ab.sh before=/tmp/kapi-before after=target/release/kapi
set -euo pipefail
LOAD=${LOAD:-target/release/kapi-load}
ROUNDS=${ROUNDS:-3}
NODES=${NODES:-20}
PPN=${PPN:-500}
CLIENTS=${CLIENTS:-16}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/kapi-ab.XXXXXX")}
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*}
    bin=${spec#*=}
    d=$(mktemp -d "${TMPDIR:-/tmp}/kapi-ab-run.XXXXXX")
    port=$((20000 + RANDOM % 10000))
    "$bin" --data-dir "$d" --secure-port "$port" >"$d/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      kubectl --kubeconfig "$d/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
      sleep 0.2
    done
    "$LOAD" populate --kubeconfig "$d/admin.kubeconfig" --nodes "$NODES" --pods-per-node "$PPN" \
      --rate 100000 --clients "$CLIENTS" --duration 300s --server-pid "$pid" \
      --out "$OUT/$name-$r.json" >"$OUT/$name-$r.log" 2>&1 || echo "$name round $r: kapi-load failed"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$OUT/$name-$r.json" "$name" "$r" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for op in report["ops"]:
    if op["verb"] == "POST" and op["resource"] == "pods":
        lat = op["latency"]
        print(f'{sys.argv[2]:8} round {sys.argv[3]}: POST pods ok={op["ok"]} '
              f'errors={sum(op["errors"].values())} rate={op["rate_per_s"]:.0f}/s '
              f'p50={lat["p50_ms"]:.1f} ms p99={lat["p99_ms"]:.1f} ms max={lat["max_ms"]:.1f} ms')
PY
    rm -rf "$d"
  done
done
echo "reports: $OUT"
