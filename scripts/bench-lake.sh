#!/usr/bin/env bash
# The lake after a sustained load (BENCHMARKS.md "Delta tables"): a release gateway on embedded
# defaults takes `trackwire-loadtest http-upload` for DURATION seconds (live 5-sample batches, 64
# connections unless ARGS says otherwise), drains, and then delta-rs reads the points table:
# active files per hour partition (compaction keeps it to `lake.compact_above_files`), commits,
# compactions, and whether the table holds exactly the samples the load test saw acked.
#   DURATION=600 bash scripts/bench-lake.sh          BIN=<dir> measures other binaries
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bench_setup lake
data="$(mktemp -d)"
http="$(free_port)"
RUST_LOG=warn "$BIN/trackwire" serve --data-dir "$data" --http-addr "127.0.0.1:$http" \
  --quic-addr "127.0.0.1:$(free_port)" > "$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/healthcheck" > /dev/null && break; sleep 0.1; done
# shellcheck disable=SC2086
"$BIN/trackwire-loadtest" http-upload --target "127.0.0.1:$http" --duration-secs "${DURATION:-600}" \
  --report "$out/report.json" --plots "$out/plots" --acked-log "$out/acked.ndjson" --no-progress \
  ${ARGS:---concurrency 64 --upload-batch-size 5} > /dev/null
kill "$pid"; wait "$pid" || true
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$data/lake" "$out" <<'PY'
import json, os, sys
from collections import Counter
import pyarrow as pa
from deltalake import DeltaTable

lake, out = sys.argv[1], sys.argv[2]
table = DeltaTable(f"{lake}/points")
adds = pa.table(table.get_add_actions(flatten=True)).to_pylist()
per_partition = Counter((str(a["partition.date"]), a["partition.hour"]) for a in adds)
target = 64 << 20  # lake.target_file_bytes: files at least this big are never merged
small = Counter((str(a["partition.date"]), a["partition.hour"]) for a in adds if a["size_bytes"] < target)
operations = Counter(h["operation"] for h in table.history())
acked = [json.loads(line) for line in open(f"{out}/acked.ndjson")]
acked_samples = sum(a["samples"] for a in acked if not a["duplicate"])
rows = table.to_pyarrow_table(columns=["workout_id", "seq", "sample_index"])
keys = Counter(zip(*(rows.column(c).to_pylist() for c in ("workout_id", "seq", "sample_index"))))
print(f"version {table.version()}, commits by operation {dict(operations)}")
print(f"active files per hour partition: max {max(per_partition.values())}, {dict(per_partition)}; "
      f"below the target size: max {max(small.values(), default=0)}")
print(f"rows {rows.num_rows:,}, distinct {len(keys):,}, acked samples {acked_samples:,}, "
      f"exactly once: {rows.num_rows == len(keys) == acked_samples}")
sys.stdout.flush()
os._exit(0)  # pyarrow's thread pool can abort at interpreter teardown after a large read
PY
rm -rf "$data"
