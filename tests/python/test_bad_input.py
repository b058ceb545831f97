"""Bad requests get the right 4xx with the seed error body, while a concurrent good client keeps
streaming and loses nothing."""
import os
import threading
import time
import uuid
from collections import Counter

import zstandard

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"
ERROR_KEYS = {"error", "message", "code", "details"}


def expect(response, status, code=None):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["message"], body
    assert body["code"] == status and isinstance(body["details"], dict), body
    if code is not None:
        assert body["error"] == code, body
    return body


def test_bad_requests_are_refused_and_a_good_client_is_unaffected(server_factory):
    server = server_factory(TRACKWIRE_INGEST__MAX_BODY_BYTES=200_000, TRACKWIRE_INGEST__MAX_DECOMPRESSED_BYTES=1_000_000).start()
    points = twclient.parse_gpx(TRACE)
    good_workout = uuid.uuid4()
    good_bodies = twclient.batches_of(points, 20, good_workout)
    results = []

    def good_client():
        for body in good_bodies:
            results.append(server.post(body).status_code)
            time.sleep(0.005)

    thread = threading.Thread(target=good_client)
    thread.start()

    valid = twclient.encode_batch(points[:37], uuid.uuid4(), 0)
    for _ in range(3):
        expect(server.post(valid[:5]), 400, "truncated")
        expect(server.post(valid[: len(valid) // 2]), 400, "invalid_flatbuffer")
        expect(server.post(valid[:4] + b"NOPE" + valid[8:]), 400, "wrong_file_identifier")
        # The samples vector's u32 length (37) pointing far past the end of the buffer.
        at = valid.index((37).to_bytes(4, "little"))
        evil = valid[:at] + (1_000_000).to_bytes(4, "little") + valid[at + 4 :]
        body = expect(server.post(evil), 400, "invalid_flatbuffer")
        assert "out of bounds" in body["message"] or "Range" in body["message"], body
        expect(server.post(os.urandom(3000)), 400)
        bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (50 << 20))
        assert len(bomb) < 100_000
        expect(server.post(bomb, headers={"Content-Encoding": "zstd"}), 413, "decompressed_too_large")
        expect(server.post(b"\x28\xb5\x2f\xfdgarbage", headers={"Content-Encoding": "zstd"}), 400, "bad_compression")
        expect(server.post(valid, headers={"Content-Encoding": "br"}), 415, "unsupported_encoding")
        expect(server.post(valid, token=None), 401, "missing_token")
        expect(server.post(valid, token="stolen"), 401, "unknown_token")
        expect(server.post(b"x" * 300_000), 413, "body_too_large")
        import requests

        wrong_method = requests.get(server.url + "/v1/ingest", timeout=5)
        assert wrong_method.headers.get("Allow") == "POST", wrong_method.headers
        expect(wrong_method, 405, "method_not_allowed")
        expect(requests.get(server.url + "/v2/nothing", timeout=5), 404, "not_found")
    # A compressed good batch is accepted too.
    r = server.post(zstandard.ZstdCompressor().compress(valid), headers={"Content-Encoding": "zstd"})
    assert r.status_code == 200, r.text

    thread.join(timeout=60)
    assert results == [200] * len(good_bodies)
    metrics = server.url + "/metrics"
    import requests

    text = requests.get(metrics, timeout=5).text
    assert 'trackwire_ingest_rejects_total{reason="malformed"} 15' in text, text
    assert 'trackwire_ingest_rejects_total{reason="missing_token"} 3' in text
    server.stop()

    rows = [r for r in twclient.read_points(server.data_dir / "lake") if r[0] == str(good_workout)]
    counts = Counter((r[1], r[2]) for r in rows)
    assert len(rows) == len(points) and max(counts.values()) == 1


def gzip_bomb(head: bytes, repeat: bytes, expanded_bytes: int) -> bytes:
    """`head`, then `repeat` until `expanded_bytes`, gzipped without holding the expansion."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = repeat * ((1 << 20) // len(repeat))
    parts = [packer.compress(head)]
    for _ in range(expanded_bytes // len(chunk)):
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts)


def test_decompression_bombs_take_neither_memory_nor_the_server(server_factory):
    """Four gzip bombs uploaded at once, and four zstd bombs to /v1/ingest, on default limits:
    the server's memory stays within 256 MiB of idle, it answers /healthcheck throughout, each
    bomb is refused with a reason, and a real upload afterwards is stored."""
    import requests

    server = server_factory().start()
    pid = server.proc.pid
    gpx_head = b'<?xml version="1.0"?><gpx version="1.1" creator="bomb"><trk><trkseg>'
    upload_bomb = gzip_bomb(gpx_head, b'<trkpt lat="1" lon="1"/>', 512 << 20)
    ingest_bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (60 << 20))
    assert len(upload_bomb) < 2 << 20 and len(ingest_bomb) < 100_000
    assert requests.get(server.url + "/healthcheck", timeout=10).status_code == 200
    idle_kib = twclient.resident_kib(pid)

    peak_kib, health, done = [idle_kib], [], threading.Event()

    def watch():
        while not done.is_set():
            peak_kib[0] = max(peak_kib[0], twclient.resident_kib(pid))
            started = time.monotonic()
            status = requests.get(server.url + "/healthcheck", timeout=30).status_code
            health.append((status, time.monotonic() - started))
            time.sleep(0.01)

    uploads, ingests = [], []

    def send_upload():
        r = server.api("POST", "/uploads", files={"file": ("bomb.gpx.gz", upload_bomb)}, timeout=120)
        uploads.append(r)

    def send_ingest():
        ingests.append(server.post(ingest_bomb, headers={"Content-Encoding": "zstd"}))

    watcher = threading.Thread(target=watch)
    watcher.start()
    senders = [threading.Thread(target=send_upload) for _ in range(4)] + [
        threading.Thread(target=send_ingest) for _ in range(4)
    ]
    for t in senders:
        t.start()
    for t in senders:
        t.join(timeout=300)
    outcomes = []
    for r in uploads:
        assert r.status_code == 202, r.text
        deadline = time.time() + 300
        while (body := server.api("GET", f"/uploads/{r.json()['id']}").json())["status"] == "processing":
            assert time.time() < deadline, body
            time.sleep(0.1)
        outcomes.append(body)
    done.set()
    watcher.join(timeout=60)
    peak_kib[0] = max(peak_kib[0], twclient.resident_kib(pid, "VmHWM"))

    assert health and all(status == 200 for status, _ in health), health
    grown_mib = (peak_kib[0] - idle_kib) / 1024
    print(f"RSS idle {idle_kib / 1024:.0f} MiB, peak {peak_kib[0] / 1024:.0f} MiB (+{grown_mib:.0f}); "
          f"/healthcheck {len(health)} answers, slowest {max(s for _, s in health) * 1000:.1f} ms")
    assert grown_mib <= 256, f"RSS grew by {grown_mib:.0f} MiB under four bombs"
    assert len(uploads) == 4 and len(ingests) == 4
    for body in outcomes:
        assert body["status"] == "error" and "expands to more than" in body["error"], body
    for r in ingests:
        expect(r, 413, "decompressed_too_large")

    real = (twclient.TRACES / "sportslib__runs_2067489619.gpx").read_bytes()
    import gzip

    r = server.api("POST", "/uploads", files={"file": ("run.gpx.gz", gzip.compress(real))})
    assert r.status_code == 202, r.text
    deadline = time.time() + 120
    while (body := server.api("GET", f"/uploads/{r.json()['id']}").json())["status"] == "processing":
        assert time.time() < deadline, body
        time.sleep(0.1)
    assert body["status"] == "ready", body


def test_a_workout_keeps_its_owner_after_its_batches_have_left_the_log(server_factory):
    """A workout belongs to the user and device of its first batch. Once it has ended and every
    segment holding it has been delivered and deleted, a restart rebuilds the log without it;
    another user's batch for it is still refused, and its owner's is still acked."""
    small = 16384  # segments roll every few batches, so the ones holding the workout can go
    server = server_factory(
        TRACKWIRE_LOG__SEGMENT_BYTES=small,
        TRACKWIRE_QUIC__MAX_FRAME_BYTES=small,
        TRACKWIRE_INGEST__MAX_DECOMPRESSED_BYTES=small,
        TRACKWIRE_INGEST__MAX_BODY_BYTES=small,
    ).start()
    points = twclient.parse_gpx(TRACE)[:400]
    workout = uuid.uuid4()
    for body in twclient.batches_of(points, 100, workout):
        assert server.post(body).status_code == 200
    segments = lambda: set((server.data_dir / "log").glob("*.twlog"))  # noqa: E731
    holding = segments()
    intruder = lambda: twclient.encode_batch(points[:5], workout, 9, device_id="py-device-2", user_id="someone-else")  # noqa: E731
    expect(server.post(intruder()), 403, "workout_owner_mismatch")

    # Other workouts move the log on until nothing of the first is left in it.
    for _ in range(40):
        if not holding & segments():
            break
        for body in twclient.batches_of(points, 100, uuid.uuid4()):
            assert server.post(body).status_code == 200
        time.sleep(0.5)
    assert not holding & segments(), f"the workout's segments are still there: {sorted(holding & segments())}"
    assert server.api("GET", f"/workouts/{workout}").json()["status"] == "completed"
    # The log's indexes let the workout go with its segments; its summary still names the owner.
    expect(server.post(intruder()), 403, "workout_owner_mismatch")
    server.stop()

    server.start()
    expect(server.post(intruder()), 403, "workout_owner_mismatch")
    late = twclient.encode_batch(points[-5:], workout, 9)
    assert server.post(late).status_code == 200
    server.stop()
