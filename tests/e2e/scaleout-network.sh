#!/usr/bin/env bash
# Two Herald nodes in containers on a private Docker network, sharing one redis-server (docs/scale-out.md):
# node A is cut off the network (`docker network disconnect`) while a client works through it. The client
# moves to node B and resumes the blackboard scope's change log from the last sequence number it saw:
# nothing written meanwhile is missed, nothing is seen twice. A rejoins (`docker network connect`) and
# serves again: the state written through B, and publications from B to a subscriber on A.
#
# The nodes run the herald binary under test in a thin image on the local debian:bookworm-slim (made by
# scripts/container-base-images.sh, as for tests/e2e/container.sh); redis-server runs on the host,
# listening on the network's gateway address. Fails when no Docker engine answers, unless
# HERALD_SKIP_DOCKER=1 (CI never sets it).
set -euo pipefail
HERALD_BIN=$(realpath "${1:?usage: $0 path/to/herald}")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  if [ "${HERALD_SKIP_DOCKER:-}" = 1 ]; then
    echo "skip: no Docker engine, and HERALD_SKIP_DOCKER=1 asked to go on without the network test"
    exit 0
  fi
  echo "FAIL: no Docker engine answers (docker info): the network test needs one." >&2
  exit 1
fi
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  "$ROOT/scripts/container-base-images.sh" >/dev/null
fi

RUN_ID="herald-net-$$"
IMAGE="herald:$RUN_ID"
NET="$RUN_ID"
WORK=$(mktemp -d)
CONTAINERS=()
REDIS_PID=""
PASS=e2e-secret

cleanup() {
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  docker network rm "$NET" >/dev/null 2>&1 || true
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for c in "${CONTAINERS[@]}"; do
    echo "--- docker logs $c" >&2
    docker logs --tail 20 "$c" >&2 2>&1 || true
  done
  exit 1
}

expect() {
  if [ "$2" != "$3" ]; then fail "$1: expected '$2', got '$3'"; fi
  echo "ok - $1"
}

# A node's RESP port as published on the host's loopback.
host_port() { docker port "$1" 6379/tcp | head -1 | sed 's/.*://'; }
# redis-cli to a node, giving up after 2 s (a node cut off the network does not answer at all).
node() {
  local port=$1
  shift
  timeout 2 redis-cli -p "$port" -a "$PASS" --no-auth-warning "$@" 2>/dev/null
}
# retry SECONDS DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds.
retry() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "never happened: $what"
    sleep 0.2
  done
}

echo "-- image, network, redis-server"
cp "$HERALD_BIN" "$WORK/herald"
printf 'FROM debian:bookworm-slim\nCOPY herald /usr/local/bin/herald\nUSER 10001\nENTRYPOINT ["herald"]\n' >"$WORK/Dockerfile"
docker build -q -t "$IMAGE" "$WORK" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "docker build"; }
docker network create "$NET" >/dev/null
GATEWAY=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$NET")
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind "$GATEWAY" --port "$REDIS_PORT" --protected-mode no --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
retry 5 "redis-server on $GATEWAY:$REDIS_PORT" redis-cli -h "$GATEWAY" -p "$REDIS_PORT" PING

start_node() {
  local name="$RUN_ID-$1"
  docker run -d --name "$name" --network "$NET" -p 127.0.0.1::6379 -e HERALD_REQUIREPASS="$PASS" \
    "$IMAGE" --bind 0.0.0.0 --port 6379 --http-port 7379 --engine "redis://$GATEWAY:$REDIS_PORT" >/dev/null
  CONTAINERS+=("$name")
}
start_node a
start_node b
A_NAME="$RUN_ID-a"
A=$(host_port "$A_NAME")
B=$(host_port "$RUN_ID-b")
retry 20 "node A answering" node "$A" PING
retry 20 "node B answering" node "$B" PING

echo "-- a client works through node A"
for i in 1 2 3; do node "$A" BB.SET orders "o$i" "v$i" >/dev/null; done
# BB.CHANGES scope SINCE seq: a map of the latest `seq` and the `changes` after it (each a map with its
# `key`); these print the latest seq, and the changed keys in order.
latest_seq() { node "$1" BB.CHANGES orders SINCE "$2" | sed -n 2p; }
changed_keys() { node "$1" BB.CHANGES orders SINCE "$2" | awk 'prev == "key" { printf "%s ", $0 } { prev = $0 }'; }
expect "the client saw three changes through A" "o1 o2 o3 " "$(changed_keys "$A" 0)"
LAST_SEQ=$(latest_seq "$A" 0)

echo "-- node A is cut off the network"
docker network disconnect "$NET" "$A_NAME"
if node "$A" PING >/dev/null; then fail "node A still answers after leaving the network"; fi
echo "ok - node A no longer answers its clients"

echo "-- the client moves to node B and resumes from seq $LAST_SEQ"
node "$B" BB.SET orders o4 v4 >/dev/null
node "$B" BB.SET orders o1 v1-updated >/dev/null
expect "every change after the last one seen, once, in order" "o4 o1 " "$(changed_keys "$B" "$LAST_SEQ")"
expect "the state is whole on B" "v2" "$(node "$B" BB.GET orders o2 | sed -n 2p)"

echo "-- node A rejoins"
docker network connect "$NET" "$A_NAME"
A=$(host_port "$A_NAME")
retry 30 "node A serving again" node "$A" PING
read_back() { [ "$(node "$A" BB.GET orders o1 | sed -n 2p)" = "v1-updated" ]; }
retry 30 "the write made through B, read through A" read_back
expect "a key written while A was away" "v4" "$(node "$A" BB.GET orders o4 | sed -n 2p)"

# A subscriber on A gets what is published on B once A's pub-sub connection to Redis is back; publish
# until it arrives (a publication while the bridge reconnects is not delivered: pub-sub keeps nothing).
redis-cli -p "$A" -a "$PASS" --no-auth-warning SUBSCRIBE news >"$WORK/sub.txt" 2>&1 &
delivered() {
  node "$B" PUBLISH news "after the partition" >/dev/null
  sleep 0.2
  grep -q "after the partition" "$WORK/sub.txt"
}
retry 30 "a publication on B received by a subscriber on A" delivered
echo "ok - pub-sub across the nodes after A rejoined"
echo "scaleout-network: all passed"
