#!/usr/bin/env bash
# Server CPU of the ACL check (issue 16): one Herald server, SET and GET at -P 16 from the unrestricted
# default user and from a restricted one (`bench on >pw ~key:* &* +@all -@dangerous`) alternating
# ROUNDS times, each run measured with /work/shared/tools/server-cpu.
#
#   bench/acl-cpu.sh target/release/herald 3          # N=2000000 requests per run by default
#
# CPU time on a shared 2-core machine moves by 10-20% between runs, more than the few percent this
# looks for: bench/instructions.sh with CLIENT_ARGS is the repeatable figure.
set -euo pipefail
BIN=${1:-target/release/herald}
ROUNDS=${2:-3}
N=${N:-2000000}
CPU=${SERVER_CPU:-/work/shared/tools/server-cpu}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HERALD_ACL__USERS="bench on >pw ~key:* &* +@all -@dangerous" "$BIN" --port "$port" --http-port 0 >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p "$port" -q -n 50000 -c 50 -P 16 -r 100000 -t set,get >/dev/null
for _ in $(seq "$ROUNDS"); do
  for t in set get; do
    echo "default $t: $("$CPU" "$pid" -- redis-benchmark -p "$port" -q -n "$N" -c 50 -P 16 -r 100000 -t "$t" 2>&1 | tr '\r' '\n' | tail -1)"
    echo "bench   $t: $("$CPU" "$pid" -- redis-benchmark -p "$port" --user bench -a pw -q -n "$N" -c 50 -P 16 -r 100000 -t "$t" 2>&1 | tr '\r' '\n' | tail -1)"
  done
done
