#!/usr/bin/env bash
# Gateway throughput on the two logs (BENCHMARKS.md "Scale-out gateway"): the same offline upload
# load (`trackwire-loadtest http-upload`) against a release gateway acking after its embedded
# log's fsync (`--role all`), and against one acking after the Kafka broker (`--role gateway`,
# tansu with in-memory storage on the same cores), with a bare rdkafka producer to the same broker
# as that run's ceiling. Prints one line per run from the reports. BIN=<dir with trackwire and
# trackwire-loadtest> measures other binaries (e.g. an older checkout's, for a before/after).
#   DURATION=20 CONCURRENCY=2 BATCH=1000 bash scripts/bench-scale-out.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bash scripts/setup-tansu.sh
bench_setup scale-out
bin="$BIN"

broker_port="$(free_port)"
"$TRACKWIRE_CACHE/tools/bin/tansu" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$broker_port" --advertised-listener-url "tcp://127.0.0.1:$broker_port" \
  > "$out/tansu.log" 2>&1 &
tansu=$!
trap 'kill "$tansu" 2>/dev/null || true' EXIT
sleep 1

for role in all gateway; do
  data="$(mktemp -d)"
  http="$(free_port)"
  extra=() ceiling=()
  if [ "$role" = gateway ]; then
    extra=(--role gateway --kafka-brokers "127.0.0.1:$broker_port")
    ceiling=(--kafka-brokers "127.0.0.1:$broker_port")
  fi
  RUST_LOG=warn "$bin/trackwire" serve --data-dir "$data" --http-addr "127.0.0.1:$http" \
    --quic-addr "127.0.0.1:$(free_port)" "${extra[@]}" > "$out/server-$role.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/healthcheck" > /dev/null && break; sleep 0.1; done
  "$bin/trackwire-loadtest" http-upload --target "127.0.0.1:$http" --concurrency "${CONCURRENCY:-2}" \
    --upload-batch-size "${BATCH:-1000}" --duration-secs "${DURATION:-20}" \
    --report "$out/upload-$role.json" --plots "$out/plots-$role" --no-progress "${ceiling[@]}" > /dev/null || true
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
done
"${TRACKWIRE_VENV:-$HOME/.cache/trackwire/venv}/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for role in ("all", "gateway"):
    r = json.load(open(f"{out}/upload-{role}.json"))
    t = r["total"]
    print(f'--role {role}: {t["samples_per_s"]:,.0f} samples/s acked ({t["batches_per_s"]:.0f} batches/s),'
          f' ack p50 {t["ack_latency"]["p50_ms"]:.1f} ms, p99 {t["ack_latency"]["p99_ms"]:.1f} ms, errors {r["error_count"]}'
          + (f'; bare producer {k["samples_per_s"]:,.0f} samples/s, ratio {k["ratio_samples_per_s"]:.2f}' if (k := r.get("kafka_ceiling")) else ''))
PY
