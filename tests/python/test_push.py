"""Push subscriptions as a third-party app meets them, against a real server process: a receiver
(Python's http.server) answers the challenge, refuses the first deliveries, and the server is
killed while it still owes them; after the restart every change arrives, signed (checked here
with Python's own hmac), and nothing is lost."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"  # 988 samples

FAST_RETRIES = {
    "TRACKWIRE_PUSH__RETRY_INITIAL_SECS": 0.3,
    "TRACKWIRE_PUSH__RETRY_MAX_SECS": 1,
    "TRACKWIRE_PUSH__MAX_ATTEMPTS": 50,
    "TRACKWIRE_PUSH__POLL_INTERVAL_MS": 100,
    # The receiver is on loopback, where a deployment's callbacks may not be.
    "TRACKWIRE_PUSH__ALLOW_PRIVATE_CALLBACKS": "true",
}


class Receiver:
    """A callback on a free loopback port; refuses deliveries (503) while `refusing`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.refusing = True
        self.attempts: list[tuple[int, str, bytes]] = []
        self.accepted: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)
                body = json.dumps({"hub.challenge": query["hub.challenge"][0]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.attempts.append((int(self.headers["Trackwire-Delivery-Attempt"]), self.headers["Trackwire-Signature"], body))
                    refuse = receiver.refusing
                    if not refuse:
                        receiver.accepted.append(json.loads(body))
                self.send_response(503 if refuse else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait(self, what, check, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if check(self):
                    return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; attempts: {[(a, b[:80]) for a, _, b in self.attempts]}")


def signature_valid(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def test_deliveries_outlive_a_crash_and_arrive_signed_once_the_receiver_accepts(server_factory):
    receiver = Receiver()
    server = server_factory(**FAST_RETRIES).start()
    r = server.api("POST", "/push-subscriptions", json={"callback_url": receiver.url, "verify_token": "py"})
    assert r.status_code == 201, r.text
    subscription = r.json()
    secret = subscription["secret"]

    # A workout streams in and completes while the receiver refuses: attempts pile up.
    workout = uuid.uuid4()
    for body in twclient.batches_of(twclient.parse_gpx(TRACE), 100, workout):
        assert server.post(body).status_code == 200
    receiver.wait("refused attempts", lambda r: len(r.attempts) >= 2)
    server.proc.kill()
    server.proc.wait(timeout=30)
    with receiver.lock:
        made_before = len(receiver.attempts)
        receiver.refusing = False

    # The restarted server still owes the delivery and makes it.
    server = server_factory(server.data_dir, **FAST_RETRIES).start()
    receiver.wait("the create, accepted", lambda r: len(r.accepted) == 1)
    event = receiver.accepted[0]
    assert (event["aspect_type"], event["object_id"], event["owner_id"]) == ("create", str(workout), twclient.DEFAULT_USER)
    assert event["subscription_id"] == subscription["id"] and event["object_type"] == "workout"
    attempts = [a for a, _, body in receiver.attempts if json.loads(body)["change_id"] == event["change_id"]]
    assert attempts == list(range(1, len(attempts) + 1)) and len(attempts) > made_before >= 2, attempts
    assert all(signature_valid(secret, sig, body) for _, sig, body in receiver.attempts)
    assert not signature_valid("another secret", receiver.attempts[0][1], receiver.attempts[0][2])

    # Edited, then deleted: one delivery each.
    r = server.api("PATCH", f"/workouts/{workout}", json={"name": "Morning run", "visibility": "public"})
    assert r.status_code == 200, r.text
    r = server.api("DELETE", f"/workouts/{workout}")
    assert r.status_code == 204, r.text
    receiver.wait("the update and the delete", lambda r: len(r.accepted) == 3)
    later = sorted(receiver.accepted[1:], key=lambda e: e["aspect_type"])
    assert [e["aspect_type"] for e in later] == ["delete", "update"]
    assert later[1]["updates"] == {"name": "Morning run", "visibility": "public"}
    assert len({e["change_id"] for e in receiver.accepted}) == 3

    listed = server.api("GET", "/push-subscriptions").json()["subscriptions"]
    assert [(s["id"], s["delivered"], s["pending"], s["failed"]) for s in listed] == [(subscription["id"], 3, 0, 0)]
    assert listed[0]["last_failure"] == "the callback answered HTTP 503" and listed[0]["secret"] is None
    server.stop()
