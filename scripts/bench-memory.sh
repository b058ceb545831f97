#!/usr/bin/env bash
# What a gateway on embedded defaults keeps of the workouts it has finished (BENCHMARKS.md "The
# live view forgets what the store holds"): DURATION seconds (default 90) of offline uploads of
# one-minute workouts, so tens of thousands end, then its RSS 5 s after the load, its peak, and
# how many workouts ended. BIN=<dir> measures other binaries.
#   DURATION=90 bash scripts/bench-memory.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bench_setup memory
SETTLE=5 DURATION="${DURATION:-90}" bench_run short-workouts --concurrency 2 --upload-batch-size 1000 \
  --upload-workout-minutes 1
"${TRACKWIRE_VENV:-$TRACKWIRE_CACHE/venv}/bin/python" - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
r = json.load(open(f"{out}/short-workouts.json"))
memory = open(f"{out}/memory-short-workouts.txt").read()
kib = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", memory, re.M)}
ended = sum(int(float(v)) for v in re.findall(r"^trackwire_workouts_ended_total\{[^}]*\} (\S+)", memory, re.M))
print(f'{r["total"]["samples_per_s"]:,.0f} samples/s acked, {ended:,} workouts ended;'
      f' RSS 5 s after the load {kib["VmRSS"] / 1024:,.0f} MiB, peak {kib["VmHWM"] / 1024:,.0f} MiB;'
      f' compute ceiling {r["compute_ceiling"]["samples_per_s"]:,.0f} samples/s')
PY
