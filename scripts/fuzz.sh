#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser a client or a data file reaches (broker/fuzz, docs/security.md):
# libFuzzer through cargo-fuzz, with AddressSanitizer, on the stable toolchain (RUSTC_BOOTSTRAP lets
# stable rustc take the -Z flags cargo-fuzz passes for instrumentation and the sanitizer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 10 seconds for each of the targets
#
# Each target starts from its seeds (broker/fuzz/seeds/<target>) and the inputs that once broke it
# (broker/fuzz/regressions/<target>, replayed first), grows a corpus in target/fuzz-corpus/<target>, and
# fails on a panic, a sanitizer report, an allocation over 512 MB or a run over 2 GB of memory. A finding
# is left in broker/fuzz/artifacts/<target>/: fix it, then move it to regressions/ (broker/tests/
# fuzz_regressions.rs replays those on every cargo test where it can).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(resp_decoder commands ws_envelope bulletin_filter acl_rules persist_record restore)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  cargo install --quiet --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

echo "building the fuzz targets (release, instrumented, AddressSanitizer)"
cargo fuzz build --fuzz-dir broker/fuzz -O

for t in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$t"
  mkdir -p "$corpus"
  cp broker/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  if compgen -G "broker/fuzz/regressions/$t/*" >/dev/null; then
    echo "-- $t: replaying its regressions"
    cargo fuzz run --fuzz-dir broker/fuzz -O "$t" broker/fuzz/regressions/"$t"/* -- -malloc_limit_mb=512 -rss_limit_mb=2048 2>&1 | grep -E "^Executed|ERROR|panicked"
  fi
  echo "-- $t: ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir broker/fuzz -O "$t" "$corpus" -- \
      -max_total_time="$seconds" -malloc_limit_mb=512 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $t failed: its input is in broker/fuzz/artifacts/$t/" >&2
    rm -f "$log"
    exit 1
  fi
  grep -E '^Done|stat::number_of_executed_units|stat::peak_rss_mb' "$log" | tr '\n' ' '
  echo
  rm -f "$log"
done
echo "fuzzing: no findings"
