#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, only where it is missing:
# redis-tools (redis-cli, the end-to-end client), redis-server (the reference the compatibility
# check compares Herald with), Node.js (the JavaScript client's tests), Debian's Chromium (the
# browser end-to-end tests; never downloaded by the tests themselves), python3-venv (the Python
# client's tests run in a virtual environment), and for the container test (tests/e2e/container.sh)
# debootstrap (stand-ins for the Dockerfile's base images where no registry is reachable), docker-compose
# (the compose example) and curl. The Docker engine itself is the machine's: the container test fails
# without one. Debian/Ubuntu; runs apt-get as root or through sudo.
set -euo pipefail

missing=()
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a system redis on 6379; tests never use fixed ports, but a broker started
  # by hand on the default port would collide with it.
  if command -v service >/dev/null 2>&1; then $SUDO service redis-server stop >/dev/null 2>&1 || true; fi
fi
