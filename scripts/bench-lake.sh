#!/usr/bin/env bash
# The lake after a sustained load (BENCHMARKS.md "Delta tables"): a release gateway on embedded
# defaults takes DURATION seconds of load, and then delta-rs reads the points table: active files
# per hour partition, commits by operation, and whether the table holds exactly the samples the
# load test saw acked.
#   MODE=upload (default): `http-upload`, live 5-sample batches on 64 connections unless ARGS says
#     otherwise (the machine's top rate); the table is read as soon as the gateway drained.
#   MODE=live: `quic-fleet`, DEVICES (default 10,000) live devices at 1 Hz sending 5-sample
#     batches, as a fleet would; then the gateway stays up, idle, for SETTLE_WAIT seconds
#     (default 1080: lake.settled_after_secs, a settler round and some minutes for the merge of a
#     busy hour) so the last hour settles too.
#   DURATION=600 bash scripts/bench-lake.sh          BIN=<dir> measures other binaries
#   MODE=live DURATION=3600 bash scripts/bench-lake.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bench_setup lake
data="$(mktemp -d)"
http="$(free_port)"
quic="$(free_port)"
TRACKWIRE_QUIC__MAX_CONNECTIONS=$((${DEVICES:-10000} + 1000)) RUST_LOG="${RUST_LOG:-warn,trackwire_sinks::lake=info}" "$BIN/trackwire" serve \
  --data-dir "$data" --http-addr "127.0.0.1:$http" --quic-addr "127.0.0.1:$quic" > "$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/healthcheck" > /dev/null && break; sleep 0.1; done
rm -f "$out/acked.ndjson"
if [ "${MODE:-upload}" = live ]; then
  "$BIN/trackwire-loadtest" quic-fleet --target "127.0.0.1:$http" --quic-target "127.0.0.1:$quic" \
    --quic-cert "$data/quic-cert.pem" --devices "${DEVICES:-10000}" --hz 1 --batch-size 5 --ramp-up-secs 30 \
    --duration-secs "${DURATION:-3600}" --report "$out/report.json" --plots "$out/plots" \
    --acked-log "$out/acked.ndjson" --no-progress > /dev/null
  sleep "${SETTLE_WAIT:-1080}"
else
  # shellcheck disable=SC2086
  "$BIN/trackwire-loadtest" http-upload --target "127.0.0.1:$http" --duration-secs "${DURATION:-600}" \
    --report "$out/report.json" --plots "$out/plots" --acked-log "$out/acked.ndjson" --no-progress \
    ${ARGS:---concurrency 64 --upload-batch-size 5} > /dev/null
fi
kill "$pid"; wait "$pid" || true
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$data/lake" "$out" <<'PY'
import json, os, sys
from collections import Counter
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

lake, out = sys.argv[1], sys.argv[2]
table = DeltaTable(f"{lake}/points")
adds = pa.table(table.get_add_actions(flatten=True)).to_pylist()
per_partition = Counter((str(a["partition.date"]), a["partition.hour"]) for a in adds)
sizes = {}
for a in adds:
    sizes.setdefault((str(a["partition.date"]), a["partition.hour"]), []).append(a["size_bytes"])
operations = Counter(h["operation"] for h in table.history())
acked_samples = 0
with open(f"{out}/acked.ndjson") as acked:
    for line in acked:
        a = json.loads(line)
        if not a["duplicate"]:
            acked_samples += a["samples"]
rows = table.to_pyarrow_table(columns=["workout_id", "seq", "sample_index"])
copies = rows.group_by(["workout_id", "seq", "sample_index"]).aggregate([([], "count_all")])
most = pc.max(copies.column("count_all")).as_py() if copies.num_rows else 0
print(f"version {table.version()}, commits by operation {dict(operations)}")
print(f"active files per hour partition: max {max(per_partition.values())}")
for partition, files in sorted(sizes.items()):
    print(f"  {partition[0]} hour {partition[1]}: {len(files)} files, MB {[round(b / 1e6, 1) for b in sorted(files)]}")
print(f"rows {rows.num_rows:,}, distinct {copies.num_rows:,}, most copies of one {most}, acked samples {acked_samples:,}, "
      f"exactly once: {rows.num_rows == copies.num_rows == acked_samples}")
sys.stdout.flush()
os._exit(0)  # pyarrow's thread pool can abort at interpreter teardown after a large read
PY
rm -rf "$data"
