#!/usr/bin/env bash
# kapi on a real etcd beside kapi on its embedded store, compared by one `kapi-load bench` run:
# starts Debian's etcd and both kapi servers (release builds of this repository) on free loopback
# ports in a temporary directory, gives kapi-load a restart hook for each (the cold-start phase),
# and writes the side-by-side report to $OUT. kapi on etcd's CPU and RSS are kapi's plus etcd's,
# as the embedded store's are inside kapi. Every process it starts is killed on exit.
#
# Extra arguments go to `kapi-load bench` (sizes, --suite, --phases). Try it small first:
#   bash loadtest/bench.sh --suite smoke
# The 100,000-pod figure:
#   bash loadtest/bench.sh --nodes 10000 --pods-per-node 10
set -euo pipefail

SKIP_BUILD=${SKIP_BUILD:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KAPI=${KAPI:-$TARGET_DIR/release/kapi}
KAPI_LOAD=${KAPI_LOAD:-$TARGET_DIR/release/kapi-load}
OUT=${OUT:-${TMPDIR:-/tmp}/kapi-bench-$(date +%Y%m%d-%H%M%S)}

for tool in etcd curl; do
    command -v "$tool" >/dev/null || {
        echo "bench.sh: $tool is missing (apt-get install -y etcd-server curl)" >&2
        exit 1
    }
done
if [ "$SKIP_BUILD" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p kapi -p kapi-load)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kapi-bench.XXXXXX")
mkdir -p "$OUT"
# The servers' pids live in files: a restart hook replaces them.
cleanup() {
    for f in "$WORK"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 1
    cp "$WORK"/*.log "$OUT/" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports below the ephemeral range, distinct from each other.
TAKEN=" "
free_port() {
    local p
    while :; do
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
EMBEDDED_PORT=$(free_port)
TAKEN+="$EMBEDDED_PORT "
ETCD_KAPI_PORT=$(free_port)
ETCD=http://127.0.0.1:$ETCD_PORT

wait_for() { # what, seconds, command...
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "bench.sh: $what did not come up; logs in $WORK" >&2
    tail -20 "$WORK"/*.log >&2 || true
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
echo $! >"$WORK/etcd-server.pid"
wait_for etcd 30 sh -c "curl -sf http://127.0.0.1:$METRICS_PORT/health | grep -q '\"health\":\"true\"'"

# start_kapi NAME PORT [flags]: starts kapi in the background, records its pid, prints it.
start_kapi() {
    local name=$1 port=$2
    shift 2
    "$KAPI" --data-dir "$WORK/kapi-$name" --bind-address 127.0.0.1 --secure-port "$port" "$@" \
        >>"$WORK/kapi-$name.log" 2>&1 </dev/null &
    echo $! >"$WORK/kapi-$name.pid"
    echo $!
}
# The restart hook of a server: stop it, wait for it to exit, start it again, print its pid.
hook() { # NAME PORT [flags]
    local name=$1
    cat >"$WORK/restart-$name.sh" <<EOF
#!/usr/bin/env bash
set -e
old=\$(cat "$WORK/kapi-$name.pid")
kill "\$old"
# Wait until it has exited: gone, or a zombie (its parent has not reaped it) whose other
# threads are gone too (the leader turns zombie before they release its files and store lock).
while [ -d /proc/\$old ] && { [ "\$(cut -d" " -f3 /proc/\$old/stat 2>/dev/null || echo Z)" != Z ] ||
    [ "\$(ls /proc/\$old/task 2>/dev/null | wc -l)" -gt 1 ]; }; do sleep 0.05; done
$(declare -f start_kapi)
KAPI="$KAPI" WORK="$WORK" start_kapi $(printf '%q ' "$@")
EOF
    chmod +x "$WORK/restart-$name.sh"
    echo "$WORK/restart-$name.sh"
}

EMBEDDED_PID=$(start_kapi embedded "$EMBEDDED_PORT")
ETCD_KAPI_PID=$(start_kapi etcd "$ETCD_KAPI_PORT" --etcd-servers "$ETCD")
wait_for "kapi (embedded)" 60 sh -c "test -f $WORK/kapi-embedded/admin.kubeconfig && curl -skf https://127.0.0.1:$EMBEDDED_PORT/readyz"
wait_for "kapi (etcd)" 60 sh -c "test -f $WORK/kapi-etcd/admin.kubeconfig && curl -skf https://127.0.0.1:$ETCD_KAPI_PORT/readyz"
echo "bench.sh: etcd $ETCD; kapi embedded :$EMBEDDED_PORT (pid $EMBEDDED_PID), kapi on etcd :$ETCD_KAPI_PORT (pid $ETCD_KAPI_PID); report in $OUT" >&2

"$KAPI_LOAD" bench \
    --cluster "etcd=$WORK/kapi-etcd/admin.kubeconfig" \
    --cluster "embedded=$WORK/kapi-embedded/admin.kubeconfig" \
    --server-pid "etcd=$ETCD_KAPI_PID,$(cat "$WORK/etcd-server.pid")" \
    --server-pid "embedded=$EMBEDDED_PID" \
    --restart-hook "etcd=$(hook etcd "$ETCD_KAPI_PORT" --etcd-servers "$ETCD")" \
    --restart-hook "embedded=$(hook embedded "$EMBEDDED_PORT")" \
    --out "$OUT/bench.json" "$@" 2> >(tee "$OUT/bench.log" >&2)
