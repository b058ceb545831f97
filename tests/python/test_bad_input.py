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
