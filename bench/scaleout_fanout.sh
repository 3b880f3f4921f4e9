#!/usr/bin/env bash
# What scaling pub-sub out costs (issue 20): the same fan-out (one publisher at a fixed rate, S
# subscribers on one channel) served by (a) redis-server, (b) one Herald node on the embedded engine, and
# (c) three Herald nodes on the Redis engine sharing one backing redis-server, the subscribers spread
# over the three nodes round robin and the publisher on the first. Prints deliveries, server CPU per
# delivery (for (c) summed over the three nodes and the backing Redis) and publish-to-receive latency,
# from target/release/fanout (`--also-pid` sums the other processes' CPU over its measuring window).
#
#   bench/scaleout_fanout.sh [HERALD_BIN] [FANOUT_BIN] [SUBSCRIBERS] [RATE] [SECONDS]
set -euo pipefail
BIN=${1:-target/release/herald}
FANOUT=${2:-target/release/fanout}
S=${3:-1000}
RATE=${4:-1000}
SECS=${5:-5}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 300); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
ulimit -n 65536 2>/dev/null || true

rp=$(free_port); redis-server --port "$rp" --save "" --appendonly no --maxclients 20000 >/dev/null & pids+=($!); redis_pid=$!
ep=$(free_port); "$BIN" --port "$ep" --http-port 0 >/dev/null 2>&1 & pids+=($!); emb_pid=$!
bp=$(free_port); redis-server --port "$bp" --save "" --appendonly no >/dev/null & pids+=($!); back_pid=$!
up "$bp"
nodes=(); node_pids=()
for _ in 1 2 3; do
  np=$(free_port); "$BIN" --port "$np" --http-port 0 --engine "redis://127.0.0.1:$bp" >/dev/null 2>&1 & pids+=($!)
  nodes+=("$np"); node_pids+=($!)
done
up "$rp"; up "$ep"; for np in "${nodes[@]}"; do up "$np"; done

# run LABEL PUBLISH_PORT PID ALSO_PIDS SUB_ADDRS
run() {
  local label=$1 port=$2 pid=$3 also=$4 subs=$5 out
  out=$("$FANOUT" --addr "127.0.0.1:$port" --subscribers "$S" --mode rate --rate "$RATE" --duration "$SECS" --pid "$pid" \
    ${also:+--also-pid "$also"} ${subs:+--sub-addrs "$subs"})
  python3 - "$label" "$out" <<'PY'
import re, sys
label, out = sys.argv[1], sys.argv[2]
f = dict(re.findall(r"(\w+)=(\d+)", out))
print(f"| {label} | {int(f['deliveries']):,} | {int(f['server_ns_per_delivery'])} | {f['p50']} | {f['p99']} |")
PY
}

echo "Fan-out: $S subscribers, one publisher at $RATE/s, $SECS s"
echo
echo "| server | deliveries | server CPU ns/delivery | p50 us | p99 us |"
echo "|---|---|---|---|---|"
run "redis-server" "$rp" "$redis_pid" "" ""
run "herald, one embedded node" "$ep" "$emb_pid" "" ""
also="${node_pids[1]},${node_pids[2]},$back_pid"
subs="127.0.0.1:${nodes[0]},127.0.0.1:${nodes[1]},127.0.0.1:${nodes[2]}"
TICK=$(getconf CLK_TCK)
cpu() { awk -v t="$TICK" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
before=(); for p in "${node_pids[@]}" "$back_pid"; do before+=("$(cpu "$p")"); done
run "herald, 3 nodes on redis (sum of nodes + redis)" "${nodes[0]}" "${node_pids[0]}" "$also" "$subs"
after=(); for p in "${node_pids[@]}" "$back_pid"; do after+=("$(cpu "$p")"); done
echo
echo "Per process over the whole run (connecting included), CPU seconds: node 1 (publisher's) / node 2 / node 3 / backing redis:"
python3 -c 'import sys; a = sys.argv[1:]; n = len(a) // 2; print(" / ".join("%.2f" % (float(a[n + i]) - float(a[i])) for i in range(n)))' \
  "${before[@]}" "${after[@]}"
