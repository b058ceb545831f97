#!/usr/bin/env bash
# How the cost of HTTP ingest grows with batch size and connections (BENCHMARKS.md "How cost
# grows"): for every batch size in SIZES and connection count in CONNECTIONS, a fresh release
# gateway on embedded defaults and `trackwire-loadtest http-upload --ceiling` (closed loop), then
# one Markdown table row per pair: acked samples/s and requests/s, p99, the discard server's
# requests/s and the compute ceiling of the same run, and the load generator's share of the
# machine. BIN=<dir> measures other binaries.
#   DURATION=10 SIZES="1 5 50 1000" CONNECTIONS="4 64 256" bash scripts/bench-growth.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bench_setup growth
for size in ${SIZES:-1 5 50 1000}; do
  for connections in ${CONNECTIONS:-4 64 256}; do
    bench_run "b${size}-c${connections}" --concurrency "$connections" --upload-batch-size "$size"
  done
done
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$out" "${SIZES:-1 5 50 1000}" "${CONNECTIONS:-4 64 256}" <<'PY'
import json, sys
out, sizes, conns = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| batch | connections | samples/s acked | requests/s | p99 ms | discard requests/s | ratio | compute ceiling samples/s | ratio | generator CPU | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for size in sizes:
    for c in conns:
        r = json.load(open(f"{out}/b{size}-c{c}.json"))
        t, d, k, g = r["total"], r["ceiling"], r["compute_ceiling"], r["generator"]
        print(f'| {size} | {c} | {t["samples_per_s"]:,.0f} | {t["batches_per_s"]:,.0f} | {t["ack_latency"]["p99_ms"]:.1f} |'
              f' {d["discard"]["total"]["batches_per_s"]:,.0f} | {d["ratio_batches_per_s"]:.2f} |'
              f' {k["samples_per_s"]:,.0f} | {k["ratio_samples_per_s"]:.2f} | {g["cpu_share"]:.0%} | {r["error_count"]} |')
PY
