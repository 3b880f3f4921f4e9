#!/usr/bin/env bash
# Lua scripting end to end: redis-cli --eval with a script file, SCRIPT LOAD / EVALSHA, a function
# library, and Python clients (redis-py's register_script and Lock, dramatiq's Redis broker processing
# real messages) in a virtual environment (target/pyenv-scripting) with packages from PyPI.
set -euo pipefail
source "$(dirname "$0")/common.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

start_herald

SCRIPT="$ROOT/tests/e2e/scripting/stamp.lua"
expect "redis-cli --eval, first run" "$(printf '1\n1')" "$(cli --eval "$SCRIPT" stamp:k stamp:log , v1 a)"
expect "redis-cli --eval, second run" "$(printf '0\n2')" "$(cli --eval "$SCRIPT" stamp:k stamp:log , v2 b)"
expect "the first value stays" "v1" "$(cli GET stamp:k)"
SHA=$(cli SCRIPT LOAD "return redis.call('INCR', KEYS[1])")
expect "EVALSHA" "1" "$(cli EVALSHA "$SHA" 1 counter)"
expect "EVALSHA again" "2" "$(cli EVALSHA "$SHA" 1 counter)"
expect "NOSCRIPT" "NOSCRIPT No matching script. Please use EVAL." "$(cli EVALSHA 0000000000000000000000000000000000000000 0 2>&1)"
cli FUNCTION LOAD "#!lua name=e2e
redis.register_function('greet', function(keys, args) return 'hello ' .. args[1] end)" >/dev/null
expect "FCALL" "hello herald" "$(cli FCALL greet 0 herald)"
expect "a script reaches the jobs domain" "1" "$(cli EVAL "redis.call('JOB.SUBMIT', 'q', 'p') return 1" 0)"

VENV="$ROOT/target/pyenv-scripting"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet redis "dramatiq[redis]"
"$VENV/bin/python" "$ROOT/tests/e2e/scripting/clients.py" "$PORT" || fail "python clients"

stop_herald
echo "scripting: all passed"
