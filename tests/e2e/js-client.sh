#!/usr/bin/env bash
# The JavaScript client (clients/js) against the built binary: its node:test suites, the browser end to
# end included (headless Chromium; skipped when Chromium is missing unless HERALD_REQUIRE_BROWSER is set).
# Each test file starts its own brokers on free ports.
set -euo pipefail
HERALD_BIN=$(realpath "${1:?usage: $0 path/to/herald}")
export HERALD_BIN
cd "$(dirname "$0")/../../clients/js"
node --experimental-websocket --test test/
