#!/usr/bin/env bash
# The watch-cache issue's targets, each beside its baseline, in one run against a release kapi
# built from this repository, on a real etcd started on free loopback ports:
#   (a) LIST of $PODS pods, protobuf and JSON, vs `etcdctl get --prefix /registry/pods/`;
#   (b) $WATCHERS kubelet-style watches (fieldSelector=spec.nodeName) + $UPDATE_RATE pod
#       updates/s for $WATCH_DURATION: delivery latency (write acknowledged → event received),
#       kapi's CPU and RSS;
#   (c) kapi's RSS with the pods cached, beside the pods' protobuf bytes in etcd.
# Every process it starts is killed on exit. Reports go to $OUT.
#
# Try it small first:
#   PODS=2000 WATCHERS=500 UPDATE_RATE=100 WATCH_DURATION=20s bash loadtest/targets.sh
set -euo pipefail

PODS=${PODS:-100000}
WATCHERS=${WATCHERS:-10000}
# The pods are spread over as many nodes as there are watchers (one kubelet per node).
NODES=${NODES:-$WATCHERS}
PODS_PER_NODE=${PODS_PER_NODE:-$(((PODS + NODES - 1) / NODES))}
NAMESPACES=${NAMESPACES:-100}
POPULATE_RATE=${POPULATE_RATE:-100000}
POPULATE_CLIENTS=${POPULATE_CLIENTS:-32}
POPULATE_TIMEOUT=${POPULATE_TIMEOUT:-30m}
LISTS=${LISTS:-5}
UPDATE_RATE=${UPDATE_RATE:-1000}
UPDATE_CLIENTS=${UPDATE_CLIENTS:-4}
WATCH_DURATION=${WATCH_DURATION:-60s}
# Real kubelets have one connection each; 10,000 TLS connections are more than a 2-core machine
# running the server, etcd and the load at once should spend its time on.
KUBELETS_PER_CONNECTION=${KUBELETS_PER_CONNECTION:-100}
# (b)'s baseline: the same update rate with this few watchers (the updates go to their nodes'
# pods only), for this long, before the big run; 0 skips it.
BASELINE_WATCHERS=${BASELINE_WATCHERS:-100}
BASELINE_DURATION=${BASELINE_DURATION:-20s}
# 0: the kubelets watch from one shared resourceVersion (steady state: they listed long ago);
# 1: each LISTs its pods first (resourceVersion=0), all within seconds: the start's LIST storm.
KUBELET_LIST=${KUBELET_LIST:-0}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KAPI=${KAPI:-$TARGET_DIR/release/kapi}
KAPI_LOAD=${KAPI_LOAD:-$TARGET_DIR/release/kapi-load}
OUT=${OUT:-${TMPDIR:-/tmp}/kapi-targets-$(date +%Y%m%d-%H%M%S)}

for tool in etcd etcdctl curl jq; do
    command -v "$tool" >/dev/null || {
        echo "targets.sh: $tool is missing (apt-get install -y etcd-server etcd-client curl jq)" >&2
        exit 1
    }
done

if [ "$SKIP_BUILD" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p kapi -p kapi-load)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kapi-targets.XXXXXX")
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports, distinct from each other.
TAKEN=" "
free_port() {
    local p
    while :; do
        # Below the kernel's ephemeral range (32768 on), where outgoing connections take ports.
        p=$((20000 + RANDOM % 12000))
        if [[ $TAKEN != *" $p "* ]] && [ -z "$(ss -Htln "sport = :$p")" ]; then
            TAKEN+="$p "
            echo "$p"
            return
        fi
    done
}
ETCD_PORT=$(free_port)
TAKEN+="$ETCD_PORT "
PEER_PORT=$(free_port)
TAKEN+="$PEER_PORT "
METRICS_PORT=$(free_port)
TAKEN+="$METRICS_PORT "
KAPI_PORT=$(free_port)
ETCD=http://127.0.0.1:$ETCD_PORT

wait_for() { # what, seconds, command...
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "targets.sh: $what did not come up; logs in $WORK" >&2
    tail -20 "$WORK"/*.log >&2 || true
    trap - EXIT
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    exit 1
}

etcd --name=default --data-dir="$WORK/etcd" \
    --listen-client-urls="$ETCD" --advertise-client-urls="$ETCD" \
    --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-cluster="default=http://127.0.0.1:$PEER_PORT" \
    --listen-metrics-urls="http://127.0.0.1:$METRICS_PORT" \
    --experimental-watch-progress-notify-interval=5s \
    --quota-backend-bytes=$((8 << 30)) >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID")
wait_for etcd 30 sh -c "curl -sf http://127.0.0.1:$METRICS_PORT/health | grep -q '\"health\":\"true\"'"

"$KAPI" --data-dir "$WORK/kapi" --bind-address 127.0.0.1 --secure-port "$KAPI_PORT" \
    --etcd-servers "$ETCD" >"$WORK/kapi.log" 2>&1 &
KAPI_PID=$!
PIDS+=("$KAPI_PID")
KC=$WORK/kapi/admin.kubeconfig
wait_for kapi 60 sh -c "test -f $KC && curl -skf https://127.0.0.1:$KAPI_PORT/readyz"

echo "targets.sh: etcd $ETCD (pid $ETCD_PID), kapi https://127.0.0.1:$KAPI_PORT (pid $KAPI_PID), reports in $OUT" >&2

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# kapi's watch-cache gauges (kapi only; other servers' /metrics differ), kept per phase.
metrics() {
    curl -sk --cert "$WORK/kapi/admin.crt" --key "$WORK/kapi/admin.key" \
        "https://127.0.0.1:$KAPI_PORT/metrics" >"$OUT/metrics-$1.txt" 2>/dev/null || true
}
ectl() { ETCDCTL_API=3 etcdctl --endpoints="$ETCD" "$@"; }

echo "== populate: $NODES nodes × $PODS_PER_NODE pods in $NAMESPACES namespaces" >&2
"$KAPI_LOAD" populate --kubeconfig "$KC" --nodes "$NODES" --pods-per-node "$PODS_PER_NODE" \
    --namespaces "$NAMESPACES" --rate "$POPULATE_RATE" --clients "$POPULATE_CLIENTS" \
    --duration "$POPULATE_TIMEOUT" --server-pid "$KAPI_PID" --out "$OUT/populate.json" \
    >"$OUT/populate.md" 2>"$OUT/populate.log"
CREATED=$(jq '[.ops[] | select(.verb == "POST" and .resource == "pods") | .ok] | add // 0' "$OUT/populate.json")
RSS_POPULATED=$(rss_mib "$KAPI_PID")
metrics populated
ETCD_RSS=$(rss_mib "$ETCD_PID")

# The pods' bytes as stored (protobuf behind k8s\0), without etcdctl's newline after each value.
STORED=$(ectl get --prefix /registry/pods/ --keys-only --limit=1 -w json | jq '.count // 0')
VALUE_BYTES=$(($(ectl get --prefix /registry/pods/ --print-value-only | wc -c) - STORED))

echo "== listbench: $LISTS LISTs of each format and $LISTS etcdctl get --prefix" >&2
"$KAPI_LOAD" listbench --kubeconfig "$KC" --count "$LISTS" --etcdctl-baseline "$ETCD" \
    --out "$OUT/listbench.json" >"$OUT/listbench.md" 2>"$OUT/listbench.log"
RSS_LISTED=$(rss_mib "$KAPI_PID")
metrics listed

SKIP_LIST=--skip-list
[ "$KUBELET_LIST" = 1 ] && SKIP_LIST=
watch_run() { # watchers, duration, name
    "$KAPI_LOAD" run --scenario kubelets --scenario updates --kubeconfig "$KC" --watch-only \
        $SKIP_LIST --nodes "$1" --kubelets-per-connection "$KUBELETS_PER_CONNECTION" \
        --update-rate "$UPDATE_RATE" --update-clients "$UPDATE_CLIENTS" --duration "$2" \
        --server-pid "$KAPI_PID" --out "$OUT/$3.json" >"$OUT/$3.md" 2>"$OUT/$3.log"
}
if [ "$BASELINE_WATCHERS" -gt 0 ]; then
    echo "== watch baseline: the same updates with $BASELINE_WATCHERS watchers for $BASELINE_DURATION" >&2
    watch_run "$BASELINE_WATCHERS" "$BASELINE_DURATION" watch-baseline
fi
echo "== watch: $WATCHERS watch-only kubelets ($KUBELETS_PER_CONNECTION per connection, LIST first: $KUBELET_LIST), $UPDATE_RATE pod updates/s for $WATCH_DURATION" >&2
watch_run "$WATCHERS" "$WATCH_DURATION" watch
RSS_WATCHED=$(rss_mib "$KAPI_PID")
metrics watched
cp "$WORK/kapi.log" "$WORK/etcd.log" "$OUT/" 2>/dev/null || true

# jq: two decimals.
R='def r: . * 100 | round / 100; '
L=$OUT/listbench.json
W=$OUT/watch.json
series() { # jq filter on listbench.json selecting one series → "median s, MB, MB/s"
    jq -r "$1 | \"median \\(.median_s * 1000 | round / 1000) s (min \\(.min_s * 1000 | round / 1000), max \\(.max_s * 1000 | round / 1000)), \\(.items) items, \\(.bytes / 1e5 | round / 10) MB, \\(.mb_per_s | round) MB/s\"" "$L"
}
ratio() { jq -r "if .etcdctl then ($1 | .median_s) / .etcdctl.median_s * 100 | round / 100 | tostring + \"× etcdctl\" else \"\" end" "$L"; }
{
    echo "# kapi targets"
    echo
    echo "kapi $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), etcd $(etcd --version | head -1 | awk '{print $3}'), $(nproc) cores; $CREATED pods created in $(jq '.elapsed_s | round' "$OUT/populate.json") s ($NODES nodes, $NAMESPACES namespaces); $STORED pods in etcd."
    echo
    echo "(a) LIST of all pods ($LISTS sequential runs each):"
    echo "- protobuf: $(series '.lists[] | select(.what | endswith("(protobuf)"))'); $(ratio '.lists[] | select(.what | endswith("(protobuf)"))')"
    echo "- JSON: $(series '.lists[] | select(.what | endswith("(json)"))'); $(ratio '.lists[] | select(.what | endswith("(json)"))')"
    echo "- etcdctl get --prefix /registry/pods/: $(series '.etcdctl')"
    echo
    echo "(b) $WATCHERS watch-only kubelets ($KUBELETS_PER_CONNECTION per HTTP/2 connection; $([ "$KUBELET_LIST" = 1 ] && echo "each LISTs first" || echo "watching from one shared resourceVersion, no LIST each")) + pod updates at $UPDATE_RATE/s, $(jq '.elapsed_s | round' "$W") s:"
    grep -h '^updates:' "$OUT/watch.log" | tail -1 | sed 's/^/- /' || true
    jq -r "$R"'
      ([.ops[] | select(.verb == "PATCH" and .resource == "pods")] | first) as $p
      | "- updates: \($p.ok // 0) acknowledged (\(($p.rate_per_s // 0) | round)/s), p50 \($p.latency.p50_ms // 0 | r) ms, p99 \($p.latency.p99_ms // 0 | r) ms, errors \($p.errors // {})"' "$W"
    jq -r "$R"'.watch_delivery as $d | "- delivery (ack → event): \($d.count) samples, p50 \($d.p50_ms | r) ms, p90 \($d.p90_ms | r) ms, p99 \($d.p99_ms | r) ms, max \($d.max_ms | r) ms (\(.early_deliveries) arrived before their write'"'"'s response: 0 ms)"' "$W"
    grep -h "^Pod updates acknowledged" "$OUT/watch.md" | sed 's/^/- /' || true
    jq -r "$R"'
      def cores(f): ([.[] | f] | if length > 0 then (add / length * 100 | round / 100) else 0 end);
      "- kapi: CPU mean \(.server_samples | cores(.cpu_cores)) cores, max \([.server_samples[].cpu_cores] | max // 0 | . * 100 | round / 100) cores; RSS max \([.server_samples[].rss_bytes] | max // 0 | . / 1048576 | round) MiB",
      "- kapi-load itself: CPU mean \(.client_samples | cores(.cpu_cores)) cores",
      (.warnings[] | "- warning: \(.)")' "$W"
    if [ -f "$OUT/watch-baseline.json" ]; then
        jq -r "$R"'
          ([.ops[] | select(.verb == "PATCH" and .resource == "pods")] | first) as $p
          | .watch_delivery as $d
          | "- baseline, '"$BASELINE_WATCHERS"' watchers and the same updates for \(.elapsed_s | round) s: \($p.ok // 0) updates (\(($p.rate_per_s // 0) | round)/s, p99 \($p.latency.p99_ms // 0 | r) ms); delivery p50 \($d.p50_ms | r) ms, p99 \($d.p99_ms | r) ms, max \($d.max_ms | r) ms; kapi CPU mean \([.server_samples[].cpu_cores] | if length > 0 then add / length else 0 end | r) cores"' "$OUT/watch-baseline.json"
    fi
    echo "- the kubelets' LIST and WATCH (to headers): $(jq -r "$R"'[.ops[] | select(.resource == "pods" and (.verb == "LIST" or .verb == "WATCH")) | "\(.verb) p50 \(.latency.p50_ms | r) ms, p99 \(.latency.p99_ms | r) ms (\(.ok) ok, errors \(.errors))"] | join("; ")' "$W")"
    echo
    echo "(c) kapi RSS with the pods cached: ${RSS_POPULATED} MiB after populate, ${RSS_LISTED} MiB after the LISTs, ${RSS_WATCHED} MiB after the watch run;"
    echo "    the pods' protobuf values in etcd: $(awk "BEGIN {printf \"%.1f\", $VALUE_BYTES / 1048576}") MiB ($STORED values, $(awk "BEGIN {printf \"%.0f\", $VALUE_BYTES / ($STORED > 0 ? $STORED : 1)}") bytes each); etcd RSS ${ETCD_RSS} MiB."
} | tee "$OUT/summary.md"
