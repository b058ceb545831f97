#!/usr/bin/env bash
# What requests with made-up bearer tokens cost a gateway's memory (BENCHMARKS.md "Buckets of
# made-up tokens"): a release gateway on embedded defaults, four keep-alive clients asking
# `GET /api/v1/workouts` with a new random token each time for DURATION seconds (default 60),
# then its RSS against idle. BIN=<dir> measures other binaries.
#   DURATION=150 bash scripts/bench-tokens.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/bench-lib.sh
bench_setup tokens
python3 - "$BIN" "${DURATION:-60}" <<'PY'
import http.client, os, shutil, socket, subprocess, sys, tempfile, threading, time, uuid

bin_dir, duration = sys.argv[1], float(sys.argv[2])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


port = free_port()
data = tempfile.mkdtemp()
server = subprocess.Popen(
    [f"{bin_dir}/trackwire", "serve", "--data-dir", data, "--http-addr", f"127.0.0.1:{port}",
     "--quic-addr", f"127.0.0.1:{free_port()}"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
for _ in range(200):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/healthcheck")
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)


def rss_kib():
    return int(next(l for l in open(f"/proc/{server.pid}/status") if l.startswith("VmRSS")).split()[1])


idle, sent, stop = rss_kib(), [0, 0, 0, 0], time.time() + duration


def client(i):
    c = http.client.HTTPConnection("127.0.0.1", port)
    while time.time() < stop:
        c.request("GET", "/api/v1/workouts", headers={"Authorization": f"Bearer {uuid.uuid4().hex}"})
        c.getresponse().read()
        sent[i] += 1


threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
after = rss_kib()
server.terminate()
server.wait()
shutil.rmtree(data, ignore_errors=True)
print(f"{sum(sent):,} requests with made-up tokens in {duration:.0f} s; RSS idle {idle / 1024:.0f} MiB,"
      f" after {after / 1024:.0f} MiB (+{(after - idle) / 1024:.1f})")
PY
