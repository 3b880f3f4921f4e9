#!/usr/bin/env bash
# Per-operation cost of the Redis engine (docs/scale-out.md) against the embedded engine and plain Redis
# (plain commands, the blackboard, boards, mailboxes, streams and semaphores):
# redis-benchmark against (a) redis-server, (b) Herald embedded, (c) Herald on the Redis engine backed by
# its own redis-server. Prints requests/s and server CPU per request (user+system of the server
# processes from /proc; for (c) Herald's and the backing Redis's, summed and shown apart).
#
#   bench/scaleout.sh [HERALD_BIN] [REQUESTS] [CLIENTS] [PIPELINE]
#
# PIPELINE (default 1) is redis-benchmark's -P: requests each client sends before reading the replies.
# IDLE_NODES=N (default 0) starts N more Herald nodes on the same backing Redis, with no clients: they
# follow its notices as every node does, and their CPU is added to the measured node's ("server us/req").
set -euo pipefail
BIN=${1:-target/release/herald}
N=${2:-100000}
C=${3:-50}
P=${4:-1}
TICK=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu() { awk -v t="$TICK" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
up() { for _ in $(seq 300); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

rp=$(free_port); redis-server --port "$rp" --save "" --appendonly no >/dev/null & pids+=($!); redis_pid=$!
ep=$(free_port); "$BIN" --port "$ep" --http-port 0 >/dev/null 2>&1 & pids+=($!); emb_pid=$!
bp=$(free_port); redis-server --port "$bp" --save "" --appendonly no >/dev/null & pids+=($!); back_pid=$!
up "$bp"
np=$(free_port); "$BIN" --port "$np" --http-port 0 --engine "redis://127.0.0.1:$bp" >/dev/null 2>&1 & pids+=($!); node_pid=$!
idle=()
for _ in $(seq "${IDLE_NODES:-0}"); do
  ip=$(free_port); "$BIN" --port "$ip" --http-port 0 --engine "redis://127.0.0.1:$bp" >/dev/null 2>&1 & pids+=($!); idle+=($!)
  up "$ip"
done
up "$rp"; up "$ep"; up "$np"
# The CPU of PID, and of the idle nodes too when PID is the measured node.
cpu_of() {
  local sum; sum=$(cpu "$1")
  if [ "$1" = "$node_pid" ]; then for p in "${idle[@]}"; do sum=$(awk -v a="$sum" -v b="$(cpu "$p")" 'BEGIN {print a + b}'); done; fi
  echo "$sum"
}

# run LABEL PORT PID [BACKING_PID] -- COMMAND...
run() {
  local label=$1 port=$2 pid=$3 back=$4; shift 5
  local c0 b0 c1 b1 rps
  c0=$(cpu_of "$pid"); b0=0; [ "$back" != - ] && b0=$(cpu "$back")
  rps=$(redis-benchmark -p "$port" -n "$N" -c "$C" -r 100000 -P "$P" --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"')
  c1=$(cpu_of "$pid"); b1=0; [ "$back" != - ] && b1=$(cpu "$back")
  python3 - "$label" "$rps" "$c0" "$c1" "$b0" "$b1" "$N" <<'PY'
import sys
label, rps, c0, c1, b0, b1, n = sys.argv[1], float(sys.argv[2]), *map(float, sys.argv[3:7]), int(sys.argv[7])
node, back = (c1 - c0) / n * 1e6, (b1 - b0) / n * 1e6
print(f"| {label} | {rps:,.0f} | {node:.2f} | {back:.2f} | {node + back:.2f} |")
PY
}

echo "| server: command | requests/s | server us/req | backing redis us/req | total us/req |"
echo "|---|---|---|---|---|"
for cmd in "SET key:__rand_int__ xxx" "GET key:__rand_int__"; do
  # shellcheck disable=SC2086
  run "redis-server: ${cmd%% *}" "$rp" "$redis_pid" - -- $cmd
  # shellcheck disable=SC2086
  run "herald embedded: ${cmd%% *}" "$ep" "$emb_pid" - -- $cmd
  # shellcheck disable=SC2086
  run "herald on redis: ${cmd%% *}" "$np" "$node_pid" "$back_pid" -- $cmd
done
for cmd in "BB.SET s key:__rand_int__ xxx" "BB.GET s key:__rand_int__"; do
  # shellcheck disable=SC2086
  run "herald embedded: ${cmd%% *}" "$ep" "$emb_pid" - -- $cmd
  # shellcheck disable=SC2086
  run "herald on redis: ${cmd%% *}" "$np" "$node_pid" "$back_pid" -- $cmd
done
# Boards, mailboxes and Herald streams (issue 20), each producer command followed by its consumer, against
# the closest plain-Redis idiom (a list: RPUSH then LPOP; a Redis Stream: XADD then XRANGE).
set -f # XADD's `*` is an argument, not a glob
for pair in "RPUSH l xxx|LPOP l" "XADD x * f xxx|XRANGE x - + COUNT 1"; do
  # shellcheck disable=SC2086
  run "redis-server: ${pair%%|*}" "$rp" "$redis_pid" - -- ${pair%%|*}
  # shellcheck disable=SC2086
  run "redis-server: ${pair##*|}" "$rp" "$redis_pid" - -- ${pair##*|}
done
for cmd in "BL.PUBLISH b 1" "BL.RETRIEVE b LOCK 600000" "MSG.SEND d t xxx" "MSG.RECV d t" "STREAM.WRITE s xxx" "STREAM.READ s FROM $((N - 1)) COUNT 1"; do
  # shellcheck disable=SC2086
  run "herald embedded: ${cmd%% *}" "$ep" "$emb_pid" - -- $cmd
  # shellcheck disable=SC2086
  run "herald on redis: ${cmd%% *}" "$np" "$node_pid" "$back_pid" -- $cmd
done
# Semaphores: a one-permit acquire on one of 100000 names (a lock) against plain Redis's lock idiom
# (SET NX PX), then SEM.INFO.
run "redis-server: SET NX PX" "$rp" "$redis_pid" - -- SET "lock:__rand_int__" x NX PX 600000
for cmd in "SEM.ACQUIRE sem:__rand_int__ 1 LEASE 600000" "SEM.INFO sem:__rand_int__"; do
  # shellcheck disable=SC2086
  run "herald embedded: ${cmd%% *}" "$ep" "$emb_pid" - -- $cmd
  # shellcheck disable=SC2086
  run "herald on redis: ${cmd%% *}" "$np" "$node_pid" "$back_pid" -- $cmd
done
