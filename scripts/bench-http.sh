#!/usr/bin/env bash
# End-to-end HTTP throughput on embedded defaults (BENCHMARKS.md "End-to-end HTTP"): a release
# gateway, then `trackwire-loadtest http-upload` with the discard-server ceiling in the same run,
# for offline (1,000-sample batches, 2 connections) and live (5-sample batches, 4 connections)
# loads. Prints one line per load from the reports. BIN=<dir with trackwire and
# trackwire-loadtest> measures other binaries (e.g. an older checkout's, for a before/after).
#   DURATION=20 bash scripts/bench-http.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
if [ -z "${BIN:-}" ]; then
  cargo build --locked --release --workspace --bin trackwire --bin trackwire-loadtest
  BIN="$CARGO_TARGET_DIR/release"
fi
out="${OUT:-$TRACKWIRE_CACHE/bench/http}"
mkdir -p "$out"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() { # name, loadtest arguments...
  local name="$1"; shift
  local data http pid
  data="$(mktemp -d)"
  http="$(free_port)"
  RUST_LOG=warn "$BIN/trackwire" serve --data-dir "$data" --http-addr "127.0.0.1:$http" \
    --quic-addr "127.0.0.1:$(free_port)" > "$out/server-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/healthcheck" > /dev/null && break; sleep 0.1; done
  "$BIN/trackwire-loadtest" http-upload --target "127.0.0.1:$http" --duration-secs "${DURATION:-20}" \
    --ceiling --report "$out/$name.json" --no-progress "$@" > /dev/null || true
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
}
run offline --concurrency 2 --upload-batch-size 1000
run live --concurrency 4 --upload-batch-size 5 --upload-workout-minutes 10
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("offline", "live"):
    r = json.load(open(f"{out}/{name}.json"))
    t, c = r["total"], r["ceiling"]
    d = c["discard"]["total"]
    print(f'{name}: {t["samples_per_s"]:,.0f} samples/s, {t["batches_per_s"]:,.0f} batches/s acked'
          f' (p50 {t["ack_latency"]["p50_ms"]:.1f} ms, p99 {t["ack_latency"]["p99_ms"]:.1f} ms, errors {r["error_count"]});'
          f' discard server {d["samples_per_s"]:,.0f} samples/s, {d["batches_per_s"]:,.0f} batches/s;'
          f' ratio {c["ratio_batches_per_s"]:.2f}')
PY
