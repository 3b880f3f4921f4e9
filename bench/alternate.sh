#!/bin/bash
# Server CPU per request, redis-server and Herald alternating run by run in one session:
#   bench/alternate.sh [BIN]            (BIN defaults to target/release/herald)
# Environment: TESTS ("set get"), N runs per test (5), REQ requests per run (2000000), P pipeline (16).
# Each run is `redis-benchmark -c 50 -P P -r 100000 -n REQ -t TEST` measured with
# /work/shared/tools/server-cpu (user + system seconds of the server over the run). CPU time on a shared
# 2-core machine moves by 10-20% between runs, so one line is an anecdote: read the median of the
# ratios, and beside it the callgrind counts of bench/instructions.sh, which do not move.
set -euo pipefail
HERALD=${1:-target/release/herald}
SERVER_CPU=${SERVER_CPU:-/work/shared/tools/server-cpu}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RP=$(free_port)
HP=$(free_port)
redis-server --port "$RP" --save "" --appendonly no >/dev/null &
RPID=$!
"$HERALD" --port "$HP" --http-port 0 >/dev/null 2>&1 &
HPID=$!
trap 'kill $RPID $HPID 2>/dev/null' EXIT
for port in "$RP" "$HP"; do
    until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.1; done
done
REQ=${REQ:-2000000}
# Seconds of CPU the server PID spent during one redis-benchmark run against PORT.
one() {
    "$SERVER_CPU" "$1" -- redis-benchmark -p "$2" -q -n "$REQ" -c 50 -P "${P:-16}" -r 100000 -t "$3" 2>&1 |
        sed -n 's/^pid .*total \([0-9.]*\) s$/\1/p'
}
for t in ${TESTS:-set get}; do
    ratios=()
    for _ in $(seq "${N:-5}"); do
        r=$(one "$RPID" "$RP" "$t")
        h=$(one "$HPID" "$HP" "$t")
        ratios+=("$(python3 -c "print('%.2f' % ($h / $r))")")
        python3 -c "print('$t -P ${P:-16}: redis %.3f us/req, herald %.3f us/req, ratio %.2f' % ($r * 1e6 / $REQ, $h * 1e6 / $REQ, $h / $r))"
    done
    python3 -c "import statistics, sys; v = sorted(map(float, sys.argv[1:])); print('$t -P ${P:-16}: ratios', ' '.join('%.2f' % x for x in v), 'median %.2f' % statistics.median(v))" "${ratios[@]}"
done
