#!/usr/bin/env bash
# TLS throughput and server CPU per request: Herald's TLS port against redis-server's tls-port, both with
# the same certificate (made here by the openssl CLI), driven by redis-benchmark --tls. Also the same
# servers over plain TCP, so the cost TLS adds is visible for each. CPU is the server process's user +
# system time (/proc/PID/stat) over the measured run; on a shared machine the ratios are indicative.
#
#   bench/tls.sh [HERALD_BIN] [REQUESTS] [PIPELINE] [TESTS]
#   bench/tls.sh target/release/herald 200000 16 set,get
set -euo pipefail
BIN=${1:-target/release/herald}
N=${2:-200000}
P=${3:-16}
TESTS=${4:-set,get}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 -extfile "$work/ext" \
  -out "$work/server.pem" 2>/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure NAME PID PORT [redis-benchmark TLS flags...]
measure() {
  local name=$1 pid=$2 port=$3
  shift 3
  for _ in $(seq 100); do redis-cli -p "$port" "$@" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p "$port" "$@" -q -n 2000 -c 50 -P "$P" -r 100000 -t "$TESTS" >/dev/null
  local t
  for t in ${TESTS//,/ }; do
    local before after rps
    before=$(cpu_ticks "$pid")
    rps=$(redis-benchmark -p "$port" "$@" -q -n "$N" -c 50 -P "$P" -r 100000 -t "$t" | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
    after=$(cpu_ticks "$pid")
    awk -v n="$name" -v t="$t" -v r="$rps" -v c=$((after - before)) -v hz="$hz" -v req="$N" \
      'BEGIN { printf "%-22s %-4s -P %-3s %10.0f req/s  %6.2f us CPU/request\n", n, t, '"$P"', r, c / hz * 1e6 / req }'
  done
}

tls_client=(--tls --cacert "$work/ca.pem")
hp=$(free_port) htp=$(free_port)
HERALD_TLS__ENABLED=true HERALD_TLS__PORT=$htp HERALD_TLS__HTTP_PORT=0 HERALD_TLS__CERT_FILE="$work/server.pem" \
  HERALD_TLS__KEY_FILE="$work/server.key" "$BIN" --port "$hp" --http-port 0 >"$work/herald.log" 2>&1 &
pids+=($!)
measure "herald (TCP)" "${pids[0]}" "$hp"
measure "herald (TLS)" "${pids[0]}" "$htp" "${tls_client[@]}"
rp=$(free_port) rtp=$(free_port)
redis-server --port "$rp" --tls-port "$rtp" --tls-cert-file "$work/server.pem" --tls-key-file "$work/server.key" \
  --tls-ca-cert-file "$work/ca.pem" --tls-auth-clients no --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
measure "redis-server (TCP)" "${pids[1]}" "$rp"
measure "redis-server (TLS)" "${pids[1]}" "$rtp" "${tls_client[@]}"
