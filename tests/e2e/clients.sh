#!/usr/bin/env bash
# Redis client libraries against the built binary, unchanged: redis-py (Debian's python3-redis over RESP2,
# and redis-py 5 from PyPI over RESP3), node-redis (Debian's node-redis, run with node) and ruby-redis
# (Debian's ruby-redis). Each drives strings, lists, hashes, pub-sub, a transaction, a blocking pop woken
# by another connection, and the drop-oldest `lagged` notice, which each must read as an ordinary message
# on `__herald__:lagged` carrying the count. The drivers are in tests/e2e/clients/.
set -euo pipefail
source "$(dirname "$0")/common.bash"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

missing=()
/usr/bin/python3 -c "import redis" 2>/dev/null || missing+=(python3-redis)
NODE_PATH=/usr/share/nodejs node -e "require('redis')" 2>/dev/null || missing+=(node-redis)
ruby -e 'require "redis"' 2>/dev/null || missing+=(ruby-redis)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A small outbox with drop-oldest, so a subscriber that stops reading is told what it lost.
HERALD_PUBSUB__OVERFLOW=drop-oldest HERALD_PUBSUB__HARD_LIMIT=65536 start_herald
export PORT

# The flood the drivers run while their subscriber is not reading: 10,000 messages of 1 kB on firehose,
# the last one "09999..." (redis-cli --pipe, RESP written by python).
cat >"$WORK/flood" <<FLOOD
#!/usr/bin/env bash
/usr/bin/python3 - <<'PY' | redis-cli -p $PORT --pipe >/dev/null
import sys
out = sys.stdout.buffer
for i in range(10000):
    body = b"%05d" % i + b"y" * 1000
    out.write(b"*3\r\n\$7\r\nPUBLISH\r\n\$8\r\nfirehose\r\n\$%d\r\n%s\r\n" % (len(body), body))
PY
FLOOD
chmod +x "$WORK/flood"
export FLOOD="$WORK/flood"

echo "-- redis-py $(/usr/bin/python3 -c 'import redis; print(redis.__version__)') (Debian), RESP2"
/usr/bin/python3 "$HERE/clients/redis_py.py" 2 || fail "redis-py over RESP2"

VENV="$ROOT/target/pyenv"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c 'import redis, sys; sys.exit(int(redis.__version__.split(".")[0]) < 5)' 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet "redis>=5.0" >/dev/null
echo "-- redis-py $("$VENV/bin/python" -c 'import redis; print(redis.__version__)') (PyPI), RESP3"
"$VENV/bin/python" "$HERE/clients/redis_py.py" 3 || fail "redis-py over RESP3"

echo "-- node-redis $(NODE_PATH=/usr/share/nodejs node -p 'require("redis/package.json").version') (Debian)"
NODE_PATH=/usr/share/nodejs node "$HERE/clients/node_redis.cjs" || fail "node-redis"

echo "-- ruby-redis $(ruby -e 'require "redis"; puts Redis::VERSION') (Debian)"
ruby "$HERE/clients/ruby_redis.rb" || fail "ruby-redis"
echo "ok - every client library"
