# Shared by the HTTP benchmarks. `bench_setup NAME` sets BIN (a fresh release build unless BIN is
# given) and out (OUT, or the cache's bench/NAME). `bench_run NAME LOADTEST-ARGS...` starts a fresh
# release gateway on embedded defaults (free ports, a temporary data directory), runs
# `trackwire-loadtest http-upload --ceiling` against it, writes "$out/NAME.json" (and the
# gateway's RSS and ended workouts, SETTLE seconds after the load, to "$out/memory-NAME.txt") and
# stops the gateway; DURATION seconds per run (default 20).
bench_setup() {
  if [ -z "${BIN:-}" ]; then
    cargo build --locked --release --workspace --bin trackwire --bin trackwire-loadtest
    BIN="$CARGO_TARGET_DIR/release"
  fi
  out="${OUT:-$TRACKWIRE_CACHE/bench/$1}"
  mkdir -p "$out"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_run() {
  local name="$1"; shift
  local data http pid
  data="$(mktemp -d)"
  http="$(free_port)"
  RUST_LOG=warn "$BIN/trackwire" serve --data-dir "$data" --http-addr "127.0.0.1:$http" \
    --quic-addr "127.0.0.1:$(free_port)" > "$out/server-$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$http/healthcheck" > /dev/null && break; sleep 0.1; done
  "$BIN/trackwire-loadtest" http-upload --target "127.0.0.1:$http" --duration-secs "${DURATION:-20}" \
    --ceiling --report "$out/$name.json" --plots "$out/plots-$name" --no-progress "$@" > /dev/null || true
  # The gateway's memory after the load (SETTLE seconds later) and the workouts it ended.
  sleep "${SETTLE:-0}"
  { grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status"
    curl -sf "http://127.0.0.1:$http/metrics" | grep '^trackwire_workouts_ended_total' || true
  } > "$out/memory-$name.txt"
  kill "$pid"; wait "$pid" || true
  rm -rf "$data"
}
