#!/usr/bin/env bash
# Server CPU of Herald and redis-server for the scripting target (issue 21): EVALSHA of
# `return redis.call('INCR', KEYS[1])` at -P 16, the two servers alternating ROUNDS times, each run
# measured with /work/shared/tools/server-cpu (user + system seconds of the server process).
#
#   bench/evalsha-cpu.sh target/release/herald 3          # N=1000000 requests per run by default
#
# CPU time on a shared 2-core machine moves by 10-20% between runs: compare the two servers within one
# invocation, and use bench/instructions.sh for a repeatable figure.
set -euo pipefail
BIN=${1:-target/release/herald}
ROUNDS=${2:-3}
N=${N:-1000000}
CPU=${SERVER_CPU:-/work/shared/tools/server-cpu}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hp=$(free_port)
rp=$(free_port)
"$BIN" --port "$hp" --http-port 0 >/dev/null 2>&1 &
hpid=$!
redis-server --port "$rp" --save "" --appendonly no >/dev/null 2>&1 &
rpid=$!
trap 'kill $hpid $rpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$hp" ping >/dev/null 2>&1 && redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
script="return redis.call('INCR', KEYS[1])"
hsha=$(redis-cli -p "$hp" script load "$script")
rsha=$(redis-cli -p "$rp" script load "$script")
redis-benchmark -p "$hp" -q -n 20000 -c 50 -P 16 EVALSHA "$hsha" 1 key >/dev/null
redis-benchmark -p "$rp" -q -n 20000 -c 50 -P 16 EVALSHA "$rsha" 1 key >/dev/null
for _ in $(seq "$ROUNDS"); do
  echo "herald: $("$CPU" "$hpid" -- redis-benchmark -p "$hp" -q -n "$N" -c 50 -P 16 EVALSHA "$hsha" 1 key 2>&1 | tr '\r' '\n' | tail -1)"
  echo "redis:  $("$CPU" "$rpid" -- redis-benchmark -p "$rp" -q -n "$N" -c 50 -P 16 EVALSHA "$rsha" 1 key 2>&1 | tr '\r' '\n' | tail -1)"
done
