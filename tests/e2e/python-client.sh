#!/usr/bin/env bash
# The Python client (clients/python) against the built binary: its pytest suite (the whole API over RESP2
# and RESP3, sync and asyncio, reconnects, every example, mypy --strict, and the token-stream page in headless
# Chromium), in a virtual environment created here (target/pyenv) with the client and its test extras from
# PyPI. Each test run starts its own brokers on free ports.
set -euo pipefail
HERALD_BIN=$(realpath "${1:?usage: $0 path/to/herald}")
export HERALD_BIN
cd "$(dirname "$0")/../.."
VENV=target/pyenv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet "./clients/python[test]"
cd clients/python
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
