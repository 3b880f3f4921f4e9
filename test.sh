#!/usr/bin/env bash
# Runs every test in the repository: Rust unit and integration tests, a short coverage-guided fuzzing run
# of every parser (scripts/fuzz.sh), the Redis compatibility check
# against a real redis-server, and the end-to-end scripts that drive the built binary with redis-cli, with
# the JavaScript client (Node, and a page in headless Chromium) and with the Python client (pytest in a
# virtual environment it creates, tests/e2e/python-client.sh), and the container image built from the
# Dockerfile and run (tests/e2e/container.sh: needs a Docker engine, fails without one unless
# HERALD_SKIP_DOCKER=1).
# Installs what it needs (see scripts/install-test-deps.sh). Usage: ./test.sh
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-test-deps.sh

# The container test's base images, where the engine lacks them, are made (mostly downloading Debian
# packages) while cargo compiles; tests/e2e/container.sh finds them made, or makes them and says why not.
base_images_pid=""
if docker info >/dev/null 2>&1; then
  base_images_log=$(mktemp)
  scripts/container-base-images.sh >"$base_images_log" 2>&1 &
  base_images_pid=$!
fi

echo "== cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --quiet

echo "== build herald (release)"
cargo build --release --quiet --bin herald
HERALD="$PWD/target/release/herald"

echo "== fuzzing: every parser a client or a data file reaches, 10 s each (scripts/fuzz.sh, libFuzzer)"
scripts/fuzz.sh 10

echo "== Redis compatibility (tests/compat, against redis-server)"
python3 tests/compat/compare.py "$HERALD" tests/compat/*.txt
python3 tests/compat/dump_cross.py "$HERALD"

echo "== end to end with redis-cli, Node, Python, headless Chromium and Docker (tests/e2e)"
# The browser test must run here, not skip: install-test-deps.sh installed Chromium.
export HERALD_REQUIRE_BROWSER=1
if [ -n "$base_images_pid" ]; then
  wait "$base_images_pid" || echo "(making the container base images failed; tests/e2e/container.sh tries again)"
  cat "$base_images_log"
  rm -f "$base_images_log"
fi
for script in tests/e2e/*.sh; do
  echo "-- $script"
  bash "$script" "$HERALD"
done

echo "all tests passed"
