#!/usr/bin/env bash
# Where a job's Redis work goes (docs/benchmarks.md, "Jobs on the Redis engine"): one redis-server and one
# Herald node on it, `CONFIG RESETSTAT` after start-up, one `workloads jobs` run, then the backing Redis's
# `INFO commandstats` per job done (commandstats counts the calls made inside scripts too) and the CPU
# of the node and of Redis per job (from /proc, user + system, over the run).
#
#   bench/scaleout_jobs_cmdstats.sh [HERALD_BIN] [WORKLOADS_BIN] [SECONDS] [CLIENTS] [WORKERS] [--combined]
set -euo pipefail
BIN=${1:-target/release/herald}
W=${2:-target/release/workloads}
D=${3:-3}
C=${4:-8}
K=${5:-8}
MODE=${6:-}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 300); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; echo "no server on $1" >&2; exit 1; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
bp=$(free_port); redis-server --port "$bp" --save "" --appendonly no >/dev/null & rpid=$!; pids+=($rpid)
up "$bp"
np=$(free_port); "$BIN" --port "$np" --http-port 0 --engine "redis://127.0.0.1:$bp" >/dev/null 2>&1 & npid=$!; pids+=($npid)
up "$np"
sleep 0.5
redis-cli -p "$bp" CONFIG RESETSTAT >/dev/null
n0=$(cpu "$npid"); r0=$(cpu "$rpid")
out=$($W jobs $MODE --addr "127.0.0.1:$np" --clients "$C" --workers "$K" --duration "$D" | tail -1)
n1=$(cpu "$npid"); r1=$(cpu "$rpid")
echo "$out"
jobs=$(grep -oE ' ops=[0-9]+' <<<"$out" | grep -oE '[0-9]+')
hz=$(getconf CLK_TCK)
redis-cli -p "$bp" INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v jobs="$jobs" '
  /^cmdstat_/ { name=substr($1, 9); calls=$3; usec=$5; total += usec
    printf "%-14s calls/job %6.2f  usec/job %7.1f\n", name, calls / jobs, usec / jobs }
  END { printf "all commands: usec/job %.1f (jobs %d)\n", total / jobs, jobs }'
awk -v n=$((n1 - n0)) -v r=$((r1 - r0)) -v hz="$hz" -v jobs="$jobs" \
  'BEGIN { printf "cpu us/job: node %.1f redis %.1f\n", n * 1e6 / hz / jobs, r * 1e6 / hz / jobs }'
