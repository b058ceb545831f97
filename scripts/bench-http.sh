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
. scripts/bench-lib.sh
bench_setup http
bench_run offline --concurrency 2 --upload-batch-size 1000
bench_run live --concurrency 4 --upload-batch-size 5 --upload-workout-minutes 10
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("offline", "live"):
    r = json.load(open(f"{out}/{name}.json"))
    t, c, k, g = r["total"], r["ceiling"], r["compute_ceiling"], r["generator"]
    d = c["discard"]["total"]
    print(f'{name}: {t["samples_per_s"]:,.0f} samples/s, {t["batches_per_s"]:,.0f} batches/s acked'
          f' (p50 {t["ack_latency"]["p50_ms"]:.1f} ms, p99 {t["ack_latency"]["p99_ms"]:.1f} ms, errors {r["error_count"]});'
          f' discard server {d["samples_per_s"]:,.0f} samples/s, {d["batches_per_s"]:,.0f} batches/s;'
          f' ratio {c["ratio_batches_per_s"]:.2f}; compute ceiling {k["samples_per_s"]:,.0f} samples/s,'
          f' ratio {k["ratio_samples_per_s"]:.2f}; generator {g["cpu_share"]:.0%} of the machine')
PY
