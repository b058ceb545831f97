#!/usr/bin/env bash
# Fleet scaling (BENCHMARKS.md): for each fleet size, a fresh release gateway on embedded
# defaults and a `trackwire-loadtest quic-fleet` run against it (devices at 1 Hz, one sample per
# batch unless BATCH says otherwise), then one table row per size from the reports.
#   SIZES="1000 5000 10000 20000" BATCH=5 RAMP=30 DURATION=75 bash scripts/bench-fleet.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
cargo build --locked --release --workspace --bin trackwire --bin trackwire-loadtest
bin="$CARGO_TARGET_DIR/release"
out="${OUT:-$HOME/.cache/trackwire/bench/fleet}"
mkdir -p "$out"
for n in ${SIZES:-1000 5000 10000 20000}; do
  data="$(mktemp -d)"
  TRACKWIRE_QUIC__MAX_CONNECTIONS=$((n + 1000)) RUST_LOG=warn "$bin/trackwire" serve --data-dir "$data" \
    --http-addr 127.0.0.1:18080 --quic-addr 127.0.0.1:14433 > "$out/server-$n.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthcheck > /dev/null && break; sleep 0.1; done
  "$bin/trackwire-loadtest" quic-fleet --target 127.0.0.1:18080 --quic-target 127.0.0.1:14433 \
    --quic-cert "$data/quic-cert.pem" --devices "$n" --hz 1 --batch-size "${BATCH:-1}" \
    --ramp-up-secs "${RAMP:-30}" --duration-secs "${DURATION:-75}" \
    --report "$out/fleet-$n.json" --plots "$out/plots-$n" --no-progress || true
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
done
"${TRACKWIRE_VENV:-$HOME/.cache/trackwire/venv}/bin/python" - "$out" ${SIZES:-1000 5000 10000 20000} <<'PY'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
print("| devices | acked batches/s | p50 ms | p99 ms | p99 after ramp-up | max ms | errors | gateway RSS peak | RSS per live device |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in sizes:
    r = json.load(open(f"{out}/fleet-{n}.json"))
    s = r["server"]["samples"]
    base = next((x["rss_bytes"] for x in s if x["rss_bytes"]), 0)
    peak, live = r["server"]["peak_rss_bytes"] or 0, r["server"]["peak_live_workouts"] or 0
    # The steady second-half rate: the ramp is over.
    tl = r["timeline"][len(r["timeline"]) // 2 : -2] or r["timeline"]
    rate = sum(x["batches"] for x in tl) / max(len(tl), 1)
    l = r["total"]["ack_latency"]
    per = f'{(peak - base) / live / 1024:.1f} KiB' if live else "-"
    steady = r["total"].get("ack_latency_after_ramp", {}).get("p99_ms")
    steady = f"{steady:.1f}" if steady is not None else "-"
    print(f'| {n} | {rate:.0f} | {l["p50_ms"]:.1f} | {l["p99_ms"]:.1f} | {steady} | {l["max_ms"]:.1f} | {r["error_count"]} | {peak / 2**20:.0f} MiB | {per} |')
PY
