#!/usr/bin/env bash
# Persistence under crashes (tests/durability/crash.py): 10 SIGKILLs under mixed load across every domain
# for each of appendfsync always and everysec, each followed by a restart that checks every acknowledged
# write (and that no MULTI/EXEC is half applied); a torn tail; a corrupt middle (refused, then --repair);
# a full disk (a small tmpfs when it can be mounted, else the writer's fault-injection hook).
set -euo pipefail
HERALD_BIN=$(realpath "${1:?usage: $0 path/to/herald}")
cd "$(dirname "$0")/../.."
python3 tests/durability/crash.py "$HERALD_BIN" --rounds 10
