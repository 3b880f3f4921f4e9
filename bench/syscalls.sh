#!/usr/bin/env bash
# System calls, context switches and CPU time per request of a server during one redis-benchmark run,
# counted by the kernel's tracepoints (`perf stat`): figures that do not move with machine load, beside
# bench/instructions.sh's user-space instruction counts.
#
#   bench/syscalls.sh [BIN|redis] [TEST] [REQUESTS] [PIPELINE]
#   bench/syscalls.sh target/release/herald get 1000000 16
#   bench/syscalls.sh redis get 1000000 16
#
# Each count is printed per request and per batch (a batch = PIPELINE requests of one client: one read
# and one write when the server answers a batch with one of each). task-clock is the server's CPU time
# (user and kernel, every thread) in milliseconds over the measured run; utime/stime split it. Needs
# perf with tracepoint access (root, or kernel.perf_event_paranoid <= 1), redis-benchmark and redis-cli.
# Load: -c 50 -r 100000, as bench/compare.py resp; a warm-up run first.
set -euo pipefail
BIN=${1:-target/release/herald}
TEST=${2:-get}
N=${3:-1000000}
P=${4:-16}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$BIN" = redis ]; then
  server=(redis-server --port "$port" --save "" --appendonly no)
else
  server=("$BIN" --port "$port" --http-port 0)
fi
out=$(mktemp)
"${server[@]}" >/dev/null 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p "$port" -q -n 20000 -c 50 -P "$P" -r 100000 -t "$TEST" >/dev/null
events=raw_syscalls:sys_enter
for call in read recvfrom write sendto writev epoll_wait epoll_pwait epoll_ctl futex; do events+=",syscalls:sys_enter_$call"; done
events+=",context-switches,page-faults,task-clock"
perf stat -x, -e "$events" -p "$spid" -o "$out" &
perf_pid=$!
sleep 0.5
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$spid/stat")
redis-benchmark -p "$port" -q -n "$N" -c 50 -P "$P" -r 100000 -t "$TEST" >/dev/null
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$spid/stat")
kill -INT "$perf_pid"
wait "$perf_pid" || true
tick=$(getconf CLK_TCK)
echo "$(basename "${server[0]}") $TEST -P $P, $N requests: utime $(((u1 - u0) * 1000 / tick)) ms, stime $(((s1 - s0) * 1000 / tick)) ms"
awk -F, -v n="$N" -v p="$P" '/^[0-9]/ { printf "%-30s %12s  %9.4f /request  %8.3f /batch\n", $3, $1, $1 / n, $1 * p / n }' "$out"
