# Shared helpers for the end-to-end scripts: start the built broker on a free port, check, clean up.
# shellcheck shell=bash
# Sourced by tests/e2e/*.sh (not run on its own: test.sh runs only *.sh).

HERALD_BIN=${1:?usage: $0 path/to/herald}
WORK=$(mktemp -d)
HERALD_PID=""

cleanup() {
  if [ -n "$HERALD_PID" ] && kill -0 "$HERALD_PID" 2>/dev/null; then kill -9 "$HERALD_PID" 2>/dev/null || true; fi
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$WORK/herald.log" ]; then echo "--- herald log" >&2; tail -20 "$WORK/herald.log" >&2; fi
  exit 1
}

# start_herald [extra flags...]: starts herald on free ports and sets PORT from its log.
start_herald() {
  # Empty the log first: the redirect below truncates it in the child, which may run after the loop
  # has already read the previous broker's port.
  : >"$WORK/herald.log"
  "$HERALD_BIN" --port 0 --http-port 0 "$@" >>"$WORK/herald.log" 2>&1 &
  HERALD_PID=$!
  for _ in $(seq 1 100); do
    PORT=$(grep -o 'listening for RESP on [0-9.]*:[0-9]*' "$WORK/herald.log" 2>/dev/null | sed 's/.*://' || true)
    if [ -n "$PORT" ]; then return 0; fi
    kill -0 "$HERALD_PID" 2>/dev/null || fail "herald exited at start"
    sleep 0.05
  done
  fail "herald did not report its port"
}

# start_backing_redis: a redis-server on a free port for the Redis engine; sets BACKING_PORT, BACKING_PID
# and ENGINE (the --engine URL).
start_backing_redis() {
  BACKING_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$BACKING_PORT" --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
  BACKING_PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$BACKING_PORT" PING >/dev/null 2>&1 && break; sleep 0.05; done
  ENGINE="redis://127.0.0.1:$BACKING_PORT"
}

cli() { redis-cli -p "$PORT" "$@"; }

# expect "description" "expected" actual
expect() {
  if [ "$2" != "$3" ]; then fail "$1: expected '$2', got '$3'"; fi
  echo "ok - $1"
}

# wait_for_text FILE TEXT: waits up to 5s for TEXT to appear in FILE.
wait_for_text() {
  for _ in $(seq 1 100); do
    if grep -q -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  fail "'$2' never appeared in $1: $(cat "$1" 2>/dev/null)"
}

# wait_blocked CMD: waits until the broker reports exactly one client blocked (INFO blocked_clients) and a
# client whose current command is CMD (CLIENT LIST cmd=), so a check proves the command blocked before
# another client wakes it.
wait_blocked() {
  for _ in $(seq 1 200); do
    if cli INFO clients | tr -d '\r' | grep -qx 'blocked_clients:1' && cli CLIENT LIST | grep -q " cmd=$1 "; then
      echo "ok - $1 is blocked"
      return 0
    fi
    sleep 0.05
  done
  fail "$1 never blocked: $(cli INFO clients | grep blocked) $(cli CLIENT LIST)"
}

stop_herald() {
  kill -TERM "$HERALD_PID"
  for _ in $(seq 1 100); do
    if ! kill -0 "$HERALD_PID" 2>/dev/null; then
      wait "$HERALD_PID" && return 0
      fail "herald exited with an error on SIGTERM"
    fi
    sleep 0.05
  done
  fail "herald did not stop within 5s of SIGTERM"
}
