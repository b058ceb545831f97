#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) each. cargo-fuzz is installed once into the
# cache; RUSTC_BOOTSTRAP=1 lets the stable toolchain take the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
seconds="${1:-30}"
tools="$TRACKWIRE_CACHE/tools"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --locked --root "$tools"
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in decode_batch log_record import_file; do
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  if ! "$tools/bin/cargo-fuzz" run --target-dir "$TRACKWIRE_CACHE/fuzz-target" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed (a crash input is saved under fuzz/artifacts/$target)" >&2
    exit 1
  fi
  # libFuzzer's closing "Done N runs" line (its recommended dictionary may itself hold "#0").
  echo "fuzz $target: ${seconds}s without a crash ($(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n 1) runs)"
  rm -f "$log"
done
