#!/usr/bin/env bash
# The HTTP API (docs/http.md) end to end against the built binary: curl (commands, a pipeline, errors and
# their statuses, auth, CORS, event streams with Last-Event-ID), the OpenAPI document checked against the
# running broker (schemathesis for the command endpoints; tests/e2e/http_check.py for the event streams,
# which never end, and a Python client's resume), and the browser's EventSource in headless Chromium
# (tests/e2e/http-eventsource.test.mjs). Python packages come from PyPI into target/httpenv.
set -euo pipefail
source "$(dirname "$0")/common.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

http_port() { grep -o 'listening for WebSocket on [0-9.]*:[0-9]*' "$WORK/herald.log" | sed 's/.*://'; }

# A 4-change blackboard journal, so http_check.py can see a position that is gone (410).
HERALD_BLACKBOARD__JOURNAL_MAX_ENTRIES=4 start_herald
H="http://127.0.0.1:$(http_port)"

# status_of METHOD PATH [curl args...]: the HTTP status only.
status_of() { local m=$1 p=$2; shift 2; curl -s -o /dev/null -w '%{http_code}' -X "$m" "$@" "$H$p"; }

expect "POST /v1/cmd SET" '{"result":"OK"}' "$(curl -s -d '{"cmd": ["SET", "greeting", "hello"]}' "$H/v1/cmd")"
expect "the same key over RESP" "hello" "$(cli GET greeting)"
expect "POST /v1/cmd GET" '{"result":"hello"}' "$(curl -s -d '{"cmd": ["GET", "greeting"]}' "$H/v1/cmd")"
expect "binary values as base64" '{"result":{"base64":"/w=="}}' \
  "$(curl -s -d '{"cmd": ["SET", "bin", {"base64": "/w=="}]}' "$H/v1/cmd" >/dev/null; curl -s -d '{"cmd": ["GET", "bin"]}' "$H/v1/cmd")"
expect "POST /v1/pipeline" '[{"result":1},{"result":2},{"result":"hello"}]' \
  "$(curl -s -d '{"cmds": [["INCR", "n"], ["INCR", "n"], ["GET", "greeting"]]}' "$H/v1/pipeline")"
expect "bad JSON is 400" 400 "$(status_of POST /v1/cmd -d '{"cmd": ')"
expect "an unknown command is 400" 400 "$(status_of POST /v1/cmd -d '{"cmd": ["NOSUCH"]}')"
expect "WRONGTYPE is 409" 409 "$(status_of POST /v1/cmd -d '{"cmd": ["LPUSH", "greeting", "x"]}')"
expect "an unknown route is 404" 404 "$(status_of GET /v1/nothing)"
expect "a wrong method is 405" 405 "$(status_of DELETE /v1/cmd)"
head -c 9000000 /dev/zero | tr '\0' 'x' >"$WORK/big.json"
expect "an oversize body is 413" 413 "$(status_of POST /v1/cmd --data-binary @"$WORK/big.json")"
expect "a bearer token is 401 (no token issuer yet)" 401 "$(status_of POST /v1/cmd -H 'Authorization: Bearer x' -d '{"cmd": ["PING"]}')"
expect "a cross-origin request not allowed is 403" 403 "$(status_of POST /v1/cmd -H 'Origin: https://evil.example' -d '{"cmd": ["FLUSHALL"]}')"
expect "... and ran nothing" "hello" "$(cli GET greeting)"
expect "BLPOP times out over HTTP" '{"result":null}' "$(curl -s -d '{"cmd": ["BLPOP", "nothing", "0.1"]}' "$H/v1/cmd")"
expect "still serving after all that" '{"result":"PONG"}' "$(curl -s -d '{"cmd": ["PING"]}' "$H/v1/cmd")"
expect "/healthz unchanged" "ok" "$(curl -s "$H/healthz")"

# Event streams with curl -N: a subscription, and a stream resumed from Last-Event-ID.
curl -sN "$H/v1/subscribe?channel=news" >"$WORK/sub.txt" &
SUB=$!
wait_for_text "$WORK/sub.txt" "retry: 1000"
expect "PUBLISH reaches the HTTP subscriber" 1 "$(cli PUBLISH news hi)"
wait_for_text "$WORK/sub.txt" 'data: {"channel":"news","data":"hi","push":"message"}'
echo "ok - the push arrived as an event"
kill "$SUB"
for e in a b c; do cli STREAM.WRITE log "$e" >/dev/null; done
cli STREAM.CLOSE log >/dev/null
expect "a stream resumed after id 1" "$(printf 'retry: 1000\n\nid: 2\ndata: "c"\n\nevent: end\ndata: {"next":3}')" \
  "$(curl -sN -H 'Last-Event-ID: 1' "$H/v1/streams/log")"
expect "a reader that saw the end gets 204" 204 "$(status_of GET /v1/streams/log -H 'Last-Event-ID: 2')"

# The OpenAPI document against the running broker.
VENV="$ROOT/target/httpenv"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet schemathesis jsonschema pyyaml
# Every command is schema-valid, but only a known one succeeds: positive_data_acceptance cannot hold.
# The event streams never end (http_check.py checks them).
# (From $WORK: schemathesis keeps a cache in the directory it runs in.)
(cd "$WORK" && "$VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" --url "$H" --exclude-path-regex '^/v1/(subscribe|streams|jobs|bb)' \
  --exclude-checks positive_data_acceptance --generation-deterministic -n 100 --request-timeout 10 >"$WORK/schemathesis.txt" 2>&1) ||
  { cat "$WORK/schemathesis.txt"; fail "schemathesis found the broker and docs/openapi.yaml disagreeing"; }
echo "ok - schemathesis: the command endpoints conform to docs/openapi.yaml"
"$VENV/bin/python" "$ROOT/tests/e2e/http_check.py" "$(http_port)" "$PORT"
stop_herald

# Authentication: Basic credentials go through AUTH.
start_herald --requirepass s3cret
H="http://127.0.0.1:$(http_port)"
expect "no credentials is 401" 401 "$(status_of POST /v1/cmd -d '{"cmd": ["PING"]}')"
expect "a wrong password is 401" 401 "$(status_of POST /v1/cmd -u default:wrong -d '{"cmd": ["PING"]}')"
expect "Basic default:s3cret runs the command" '{"result":"PONG"}' "$(curl -s -u default:s3cret -d '{"cmd": ["PING"]}' "$H/v1/cmd")"
expect "an event stream with ?password= opens" 200 \
  "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$H/v1/subscribe?channel=x&password=s3cret" || true)"
stop_herald

# The browser's own EventSource, in headless Chromium.
HERALD_BIN=$(realpath "$HERALD_BIN") node --experimental-websocket --test "$ROOT/tests/e2e/http-eventsource.test.mjs"
