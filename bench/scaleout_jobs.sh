#!/usr/bin/env bash
# Job round trips (docs/benchmarks.md, "Jobs on the Redis engine"): `workloads jobs` against (a) the Redis
# list idiom on redis-server, (b) Herald embedded, (c) a Herald node on the Redis engine backed by its own
# redis-server; each with 1 client + 1 worker and 8 + 8, Herald also `--combined`, three rounds.
#
#   bench/scaleout_jobs.sh [HERALD_BIN] [WORKLOADS_BIN] [SECONDS]
set -euo pipefail
BIN=${1:-target/release/herald}
W=${2:-target/release/workloads}
D=${3:-4}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 300); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
rp=$(free_port); redis-server --port "$rp" --save "" --appendonly no >/dev/null & pids+=($!)
ep=$(free_port); "$BIN" --port "$ep" --http-port 0 >/dev/null 2>&1 & pids+=($!)
bp=$(free_port); redis-server --port "$bp" --save "" --appendonly no >/dev/null & pids+=($!)
up "$bp"
np=$(free_port); "$BIN" --port "$np" --http-port 0 --engine "redis://127.0.0.1:$bp" >/dev/null 2>&1 & pids+=($!)
up "$rp"; up "$ep"; up "$np"
for round in 1 2 3; do
  for cw in "1 1" "8 8"; do
    read -r c w <<<"$cw"
    echo "round $round c=$c w=$w lists    $($W jobs --redis --addr "127.0.0.1:$rp" --clients "$c" --workers "$w" --duration "$D" | tail -1)"
    echo "round $round c=$c w=$w embedded $($W jobs --addr "127.0.0.1:$ep" --clients "$c" --workers "$w" --duration "$D" | tail -1)"
    echo "round $round c=$c w=$w remote   $($W jobs --addr "127.0.0.1:$np" --clients "$c" --workers "$w" --duration "$D" | tail -1)"
    echo "round $round c=$c w=$w emb-comb $($W jobs --combined --addr "127.0.0.1:$ep" --clients "$c" --workers "$w" --duration "$D" | tail -1)"
    echo "round $round c=$c w=$w rem-comb $($W jobs --combined --addr "127.0.0.1:$np" --clients "$c" --workers "$w" --duration "$D" | tail -1)"
  done
done
