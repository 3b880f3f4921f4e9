#!/usr/bin/env bash
# Runs every test in the repository: Rust unit and integration tests, the Redis compatibility check
# against a real redis-server, and the end-to-end scripts that drive the built binary with redis-cli, with
# the JavaScript client (Node, and a page in headless Chromium) and with the Python client (pytest in a
# virtual environment it creates, tests/e2e/python-client.sh), and the container image built from the
# Dockerfile and run (tests/e2e/container.sh: needs a Docker engine, fails without one unless
# HERALD_SKIP_DOCKER=1).
# Installs what it needs (see scripts/install-test-deps.sh). Usage: ./test.sh
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-test-deps.sh

echo "== cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --quiet

echo "== build herald (release)"
cargo build --release --quiet --bin herald
HERALD="$PWD/target/release/herald"

echo "== Redis compatibility (tests/compat, against redis-server)"
python3 tests/compat/compare.py "$HERALD" tests/compat/*.txt

echo "== end to end with redis-cli, Node, Python, headless Chromium and Docker (tests/e2e)"
# The browser test must run here, not skip: install-test-deps.sh installed Chromium.
export HERALD_REQUIRE_BROWSER=1
for script in tests/e2e/*.sh; do
  echo "-- $script"
  bash "$script" "$HERALD"
done

echo "all tests passed"
