#!/usr/bin/env bash
# Runs every test: Rust unit, property and integration tests (with the generated-code check), the
# Python end-to-end tests against a real `trackwire serve` with independent clients, and a short
# fuzz run of every decoder. Installs what it needs on first use (cached under ~/.cache/trackwire).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

echo "== python venv (flatc, flatbuffers, duckdb, pyarrow, pytest)"
bash scripts/setup-python.sh

echo "== cargo test"
cargo build --locked --bin trackwire
cargo test --locked --workspace

echo "== end-to-end (independent Python client, DuckDB)"
TRACKWIRE_BIN="$CARGO_TARGET_DIR/debug/trackwire" "$TRACKWIRE_VENV/bin/pytest" -q tests/python

echo "== fuzz (short run; see fuzz/README.md)"
bash scripts/fuzz.sh "${TRACKWIRE_FUZZ_SECONDS:-20}"
