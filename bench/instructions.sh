#!/usr/bin/env bash
# Instructions per request of a server under callgrind, for one fixed redis-benchmark run: a figure that
# does not move with what else the machine is doing (server CPU time on a shared 2-core box moves by
# 10-20% between runs), so a per-request regression shows.
#
#   bench/instructions.sh [BIN|redis] [TEST] [REQUESTS] [PIPELINE]
#   bench/instructions.sh target/release/herald set 200000 16
#   bench/instructions.sh redis get 50000 1
#   bench/instructions.sh target/release/herald evalsha 100000 16    # EVALSHA <sha> 1 key of $SCRIPT
#   bench/instructions.sh redis "XADD s * f v" 50000 16              # a literal command
#
# VALGRIND_ARGS adds callgrind flags: VALGRIND_ARGS=--dump-instr=yes KEEP=DIR keeps a per-instruction
# profile, which bench/locked.py reads (atomic read-modify-write instructions per request).
#
# TEST `evalsha` loads $SCRIPT (default: return redis.call('INCR', KEYS[1])) with SCRIPT LOAD and runs
# `EVALSHA <sha> 1 key`. KEEP=DIR keeps the callgrind output there (for callgrind_annotate).
#
# The server starts under valgrind with instrumentation off; it is switched on after a warm-up run
# (connections, first allocations) and the counters are dumped after the measured run, so start-up is
# not counted. Counts are user-space instructions of the whole process (every thread). Needs valgrind,
# redis-benchmark and redis-cli. Load: -c 50 -r 100000, as bench/compare.py resp.
#
# ENGINE=redis runs the server on the Redis engine (docs/scale-out.md), backed by a redis-server of its own
# started here (not under valgrind): the count is the node's instructions per forwarded request, including
# what its pub-sub bridge received because of the load (the count is taken once the node is idle again).
#   ENGINE=redis bench/instructions.sh target/release/herald get 50000 16
#   ENGINE=redis bench/instructions.sh target/release/herald "BB.SET s key:__rand_int__ xxx" 50000 16
#
# With ENGINE=redis, FOLLOW=1 starts a second node (not under valgrind) on the same backing redis-server and
# sends the load there: the count is then what the measured node spends only following the others' work
# through its pub-sub bridge (a blackboard write's change notice, a publication for its subscribers), per
# request served elsewhere. SUBSCRIBE="N CHANNEL" keeps N redis-cli subscribers of CHANNEL on the measured
# node during both runs (a PUBLISH fan-out):
#   FOLLOW=1 ENGINE=redis bench/instructions.sh target/release/herald "BB.SET s key:__rand_int__ xxx" 50000 16
#   SUBSCRIBE="20 news" FOLLOW=1 ENGINE=redis bench/instructions.sh target/release/herald "PUBLISH news xxx" 50000 16
#
# CLIENT_ARGS adds redis-benchmark flags, e.g. a restricted ACL user (the server reads HERALD_* from the
# environment): HERALD_ACL__USERS="bench on >pw ~key:* +@all" CLIENT_ARGS="--user bench -a pw" bench/instructions.sh
set -euo pipefail
BIN=${1:-target/release/herald}
TEST=${2:-set}
N=${3:-200000}
P=${4:-16}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$(mktemp -d)
backing=
if [ "$BIN" = redis ]; then
  server=(redis-server --port "$port" --save "" --appendonly no)
else
  server=("$BIN" --port "$port" --http-port 0)
  if [ "${ENGINE:-}" = redis ]; then
    bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$bport" --save "" --appendonly no >/dev/null &
    backing=$!
    for _ in $(seq 100); do redis-cli -p "$bport" ping >/dev/null 2>&1 && break; sleep 0.05; done
    server+=(--engine "redis://127.0.0.1:$bport")
  fi
fi
load_port=$port
follower=
if [ -n "${FOLLOW:-}" ]; then
  load_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN" --port "$load_port" --http-port 0 --engine "redis://127.0.0.1:$bport" >/dev/null 2>&1 &
  follower=$!
  for _ in $(seq 100); do redis-cli -p "$load_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
fi
# shellcheck disable=SC2086
valgrind --tool=callgrind --instr-atstart=no ${VALGRIND_ARGS:-} --callgrind-out-file="$out/callgrind.%p" "${server[@]}" >/dev/null 2>"$out/valgrind.log" &
vpid=$!
subscribers=()
trap 'kill $vpid $backing $follower "${subscribers[@]}" 2>/dev/null; wait $vpid 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
if [ -n "${SUBSCRIBE:-}" ]; then
  read -r count channel <<<"$SUBSCRIBE"
  for _ in $(seq "$count"); do
    redis-cli -p "$port" subscribe "$channel" >/dev/null &
    subscribers+=($!)
  done
  until [ "$(redis-cli -p "$port" pubsub numsub "$channel" | tail -1)" = "$count" ]; do sleep 0.1; done
fi
if [ "$TEST" = evalsha ]; then
  sha=$(redis-cli -p "$load_port" script load "${SCRIPT:-return redis.call('INCR', KEYS[1])}")
  load=(EVALSHA "$sha" 1 key)
elif [[ "$TEST" == *" "* ]]; then
  # A literal command (no -t test for it in redis-benchmark 7.0), e.g. "XADD s * f v"; no globbing.
  set -f
  read -r -a load <<<"$TEST"
  set +f
else
  load=(-t "$TEST")
fi
# shellcheck disable=SC2086
redis-benchmark -p "$load_port" ${CLIENT_ARGS:-} -q -n 1000 -c 50 -P "$P" -r 100000 "${load[@]}" >/dev/null
callgrind_control -i on "$vpid" >/dev/null 2>&1
# shellcheck disable=SC2086
redis-benchmark -p "$load_port" ${CLIENT_ARGS:-} -q -n "$N" -c 50 -P "$P" -r 100000 "${load[@]}" >/dev/null
if [ -n "$backing" ]; then
  # On the Redis engine the node may still be working through what its pub-sub bridge received (notices,
  # publications) when the load ends: count that too, by waiting until its CPU time stops growing (less
  # than 30 ms in half a second: its idle timers).
  ticks() { awk '{print $14 + $15}' "/proc/$vpid/stat"; }
  before=$(ticks)
  while sleep 0.5; now=$(ticks); [ $((now - before)) -ge 3 ]; do before=$now; done
fi
callgrind_control -d "$vpid" >/dev/null 2>&1
profile=$(ls -S "$out"/callgrind.*.* | head -1)
total=$(callgrind_annotate "$profile" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$profile" "$KEEP/callgrind.$(basename "${server[0]}").$TEST"; fi
echo "$(basename "${server[0]}")${backing:+ (redis engine)}${follower:+ following} $TEST -P $P: $((total / N)) instructions per request ($total for $N requests)"
