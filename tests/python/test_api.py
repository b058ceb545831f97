"""The /api/v1 surface against a real server: uploads (idempotent, duplicates reported), streams
and the polyline checked by independent decoders, isolation between users, GDPR erasure checked in
the lake with DuckDB, coordinate retention, JWKS (RS256) tokens, and schemathesis over the served
OpenAPI document."""
from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import polyline
import pytest
import requests

import twclient

RUN_FIT = twclient.TRACES / "sportslib__runs_2067489619.fit"
RUN_GPX = twclient.TRACES / "sportslib__runs_2067489619.gpx"
RIDE_GPX = twclient.TRACES / "goldencheetah__UrbanBiker2019-04-18_16-12.gpx"


def upload(server, path: Path, user=twclient.DEFAULT_USER, external_id=None, data=None, gz=False):
    content = data if data is not None else path.read_bytes()
    if gz:
        content = gzip.compress(content)
    form = {"external_id": external_id} if external_id else {}
    r = server.api("POST", "/uploads", user=user, files={"file": (path.name + (".gz" if gz else ""), content)}, data=form)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v1/uploads/{r.json()['id']}"
    return r.json()


def wait_upload(server, upload_id, user=twclient.DEFAULT_USER, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = server.api("GET", f"/uploads/{upload_id}", user=user).json()
        if body["status"] != "processing":
            return body
        time.sleep(0.1)
    raise AssertionError(f"upload {upload_id} still processing")


def wait_workout(server, workout_id, user=twclient.DEFAULT_USER, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = server.api("GET", f"/workouts/{workout_id}", user=user)
        if r.status_code == 200 and r.json()["status"] == "completed" and not r.json()["live"]:
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"workout {workout_id} not completed in the API")


def metres(a, b):
    """Haversine distance between (lat, lon) pairs, metres."""
    r = 6_371_008.8
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def test_uploads_streams_polyline_and_isolation(server_factory):
    server = server_factory().start()
    first = upload(server, RUN_FIT, external_id="watch-session-42")
    again = upload(server, RUN_FIT, external_id="watch-session-42")
    assert again["id"] == first["id"], "a retry with the same external_id is the same upload"
    done = wait_upload(server, first["id"])
    assert done["status"] == "ready", done
    assert done["data_type"] == "fit" and done["samples"] > 100
    workout_id = done["workout_id"]
    # The same run as GPX (another format, gzipped): reported as a duplicate, not stored twice.
    dup = wait_upload(server, upload(server, RUN_GPX, gz=True)["id"])
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == workout_id, dup
    # A file of wire batches (the SDK's offline queue): stored; one for another user is refused.
    points = twclient.parse_gpx(twclient.TRACES / "georust-gpx__garmin-activity.gpx")
    wid = uuid.uuid4()
    framed = b"".join(twclient.frame(b) for b in twclient.batches_of(points, 200, wid))
    form = {"data_type": "batches"}
    r = server.api("POST", "/uploads", files={"file": ("queue.bin", framed)}, data=form)
    queued = wait_upload(server, r.json()["id"])
    assert queued["status"] == "ready" and queued["workout_id"] == str(wid) and queued["samples"] == len(points), queued
    foreign = twclient.frame(twclient.encode_batch(points[:5], uuid.uuid4(), 0, user_id="mallory"))
    r = server.api("POST", "/uploads", files={"file": ("q.bin", foreign)}, data=form)
    refused = wait_upload(server, r.json()["id"])
    assert refused["status"] == "error" and "mallory" in refused["error"], refused
    # Garbage is an error with a reason, nothing stored.
    bad = wait_upload(server, upload(server, RUN_GPX, data=b"<html>not a track</html>")["id"])
    assert bad["status"] == "error" and "GPX, TCX or FIT" in bad["error"], bad

    details = wait_workout(server, workout_id)
    # "ready" means durable; the list reads the read store, which commits a flush later.
    deadline = time.time() + 30
    while len(server.api("GET", "/workouts").json()["workouts"]) < 2:
        assert time.time() < deadline, "the batch-file workout never reached the list"
        time.sleep(0.1)
    listing = server.api("GET", "/workouts", params={"sport": "running"}).json()["workouts"]
    assert workout_id in [w["workout_id"] for w in listing]
    page = server.api("GET", "/workouts", params={"limit": 1}).json()
    assert len(page["workouts"]) == 1 and page["next_cursor"]
    rest = server.api("GET", "/workouts", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert rest["workouts"][0]["workout_id"] != page["workouts"][0]["workout_id"]

    # Streams: every resolution keeps all streams the same length.
    for resolution, cap in [("low", 100), ("medium", 1000), ("high", 10_000)]:
        streams = server.api("GET", f"/workouts/{workout_id}/streams", params={"resolution": resolution}).json()
        lengths = {key: len(s["data"]) for key, s in streams.items()}
        assert len(set(lengths.values())) == 1, lengths
        original = streams["time"]["original_size"]
        assert next(iter(lengths.values())) == min(cap, original)
        times = streams["time"]["data"]
        assert times == sorted(times) and times[0] == 0
        distance = streams["distance"]["data"]
        assert distance == sorted(distance) and abs(distance[-1] - details["distance_m"]) < 1.0
    some = server.api("GET", f"/workouts/{workout_id}/streams", params={"keys": "latlng,heartrate", "resolution": "low"}).json()
    assert set(some) == {"latlng", "heartrate"}

    # The summary polyline, decoded by an independent implementation, is the low-resolution route
    # within 1 m, point for point.
    decoded = polyline.decode(details["map"]["summary_polyline"])
    route = server.api("GET", f"/workouts/{workout_id}/route", params={"resolution": "low"})
    assert route.headers["content-type"] == "application/geo+json"
    coordinates = route.json()["geometry"]["coordinates"]
    assert len(decoded) == len(coordinates) == 100
    worst = max(metres(p, (c[1], c[0])) for p, c in zip(decoded, coordinates))
    assert worst < 1.0, worst
    # The full route is the FIT file's track: every point within 30 m of the same run's GPX export
    # (read here by the standard library).
    full = server.api("GET", f"/workouts/{workout_id}/route").json()["geometry"]["coordinates"]
    assert len(full) >= 0.95 * done["samples"]
    gpx = [(p.lat, p.lon) for p in twclient.parse_gpx(RUN_GPX) if p.lat is not None]
    assert max(min(metres((c[1], c[0]), g) for g in gpx) for c in full[:: max(1, len(full) // 50)]) < 30

    splits = server.api("GET", f"/workouts/{workout_id}/splits").json()
    assert len(splits) == math.ceil(details["distance_m"] / 1000)
    live = server.api("GET", f"/workouts/{workout_id}/live").json()
    assert live["in_progress"] is False and live["last_sample"]["distance_m"] > 0
    stats = server.api("GET", "/users/me/stats", params={"period": "year", "sport": "running"}).json()
    assert stats["buckets"][0]["count"] >= 1 and stats["records"]["longest"]["distance_m"] >= details["distance_m"]
    if details["distance_m"] >= 5000:
        assert stats["records"]["fastest_5k"]["seconds"] > 0

    # Isolation: another user's token sees nothing; no token is 401.
    other = "someone-else"
    for path in [f"/workouts/{workout_id}", f"/workouts/{workout_id}/streams", f"/workouts/{workout_id}/route",
                 f"/workouts/{workout_id}/splits", f"/workouts/{workout_id}/live", f"/uploads/{first['id']}"]:
        r = server.api("GET", path, user=other)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, r.text)
        assert server.api("GET", path, user=None).status_code == 401, path
    for path in ["/profile", "/stats", "/training-load", "/recommendations", "/gear", "/device-tokens"]:
        r = server.api("GET", f"/users/{twclient.DEFAULT_USER}{path}", user=other)
        assert r.status_code == 403 and set(r.json()) == {"error", "message", "code", "details"}, (path, r.text)
    assert server.api("DELETE", f"/users/{twclient.DEFAULT_USER}", user=other).status_code == 403
    assert server.api("GET", "/workouts", user=other).json()["workouts"] == []


def lake_ids(lake: Path, table: str) -> set[str]:
    """Workout ids in a lake table's newest version (through delta-rs)."""
    delta = twclient.delta_table(lake, table)
    if delta is None:
        return set()
    return set(delta.to_pyarrow_table(columns=["workout_id"]).column("workout_id").to_pylist())


def stored_ids(lake: Path, table: str) -> set[str]:
    """Workout ids in any Parquet file of a lake table, referenced by a version or not."""
    files = [str(f) for f in (lake / table).rglob("*.parquet") if "_delta_log" not in str(f)]
    if not files:
        return set()
    return {r[0] for r in duckdb.sql(f"select distinct workout_id from read_parquet({files!r})").fetchall()}


def test_erasure_leaves_nothing_in_store_lake_events_or_api_even_after_replay(server_factory, tmp_path):
    data = tmp_path / "data"
    server = server_factory(data).start()
    alice, bob = "alice-erase", "bob-keeps"
    a = wait_upload(server, upload(server, RUN_FIT, user=alice)["id"], user=alice)
    b = wait_upload(server, upload(server, RIDE_GPX, user=bob)["id"], user=bob)
    a_details = wait_workout(server, a["workout_id"], user=alice)
    wait_workout(server, b["workout_id"], user=bob)
    token = server.api("POST", "/users/me/device-tokens", user=alice, json={"device_id": "watch-a"}).json()["token"]
    lake = data / "lake"
    deadline = time.time() + 30
    while not ({a["workout_id"], b["workout_id"]} <= lake_ids(lake, "points") and a["workout_id"] in lake_ids(lake, "workouts")):
        assert time.time() < deadline, "the lake never got both workouts"
        time.sleep(0.2)

    r = server.api("DELETE", f"/users/{alice}", user=alice)
    assert r.status_code == 200, r.text
    assert r.json()["workouts_erased"] == 1

    def nothing_of_alice():
        assert a["workout_id"] not in lake_ids(lake, "points")
        assert a["workout_id"] not in lake_ids(lake, "workouts")
        # Not just hidden from the newest version: no stored file holds her rows any more.
        assert a["workout_id"] not in stored_ids(lake, "points")
        assert a["workout_id"] not in stored_ids(lake, "workouts")
        assert b["workout_id"] in lake_ids(lake, "points"), "Bob's rows are untouched"
        assert server.api("GET", "/workouts", user=alice).json()["workouts"] == []
        assert server.api("GET", f"/workouts/{a['workout_id']}", user=alice).status_code == 404
        assert server.api("GET", f"/uploads/{a['id']}", user=alice).status_code == 404
        assert server.api("GET", "/users/me/stats", user=alice).json()["buckets"] == []
        events = "".join(p.read_text() for p in (data / "events").glob("*.jsonl"))
        assert a["workout_id"] not in events and b["workout_id"] in events
        assert server.api("GET", f"/workouts/{b['workout_id']}", user=bob).status_code == 200

    nothing_of_alice()
    tombstones = [json.loads(line) for line in (data / "events" / "tombstones.ndjson").read_text().splitlines()]
    twclient.validate_event(tombstones[-1])
    assert tombstones[-1]["user_id"] == alice and a["workout_id"] in tombstones[-1]["data"]["workout_ids"]
    assert server.post(b"x", token=token).status_code == 401, "her device tokens are revoked"

    # A restart replays the log: the erased user must not come back.
    server.stop()
    server = server_factory(data).start()
    time.sleep(1.5)
    nothing_of_alice()

    # She records with Trackwire again: the same file, uploaded after the erasure, is new data,
    # not a duplicate of what was erased (once after a restart, once with the log still open).
    for _ in range(2):
        again = wait_upload(server, upload(server, RUN_FIT, user=alice)["id"], user=alice)
        assert (again["status"], again["workout_id"], again.get("duplicate_of")) == ("ready", a["workout_id"], None), again
        back = wait_workout(server, a["workout_id"], user=alice)
        assert (back["samples"], back["distance_m"]) == (a_details["samples"], a_details["distance_m"]), back
        r = server.api("DELETE", f"/users/{alice}", user=alice)
        assert (r.status_code, r.json()["workouts_erased"]) == (200, 1), r.text


def test_an_edited_then_deleted_workout_leaves_nothing_even_after_replay(server_factory, tmp_path):
    """The owner edits one workout (WorkoutEdited, schema-checked), exports it (read by gpxpy, an
    independent GPX library), then deletes it: its rows leave the lake's tables and stored files,
    its event lines go, WorkoutDeleted is told, and a restart's replay brings nothing back, while
    the owner's other workout stays whole."""
    import gpxpy

    data = tmp_path / "data"
    server = server_factory(data).start()
    ada = "ada-deletes"
    run = wait_upload(server, upload(server, RUN_FIT, user=ada)["id"], user=ada)
    ride = wait_upload(server, upload(server, RIDE_GPX, user=ada)["id"], user=ada)
    details = wait_workout(server, run["workout_id"], user=ada)
    wait_workout(server, ride["workout_id"], user=ada)
    lake = data / "lake"
    deadline = time.time() + 30
    while not ({run["workout_id"], ride["workout_id"]} <= lake_ids(lake, "points")):
        assert time.time() < deadline, "the lake never got both workouts"
        time.sleep(0.2)

    exported = server.api("GET", f"/workouts/{run['workout_id']}/export", user=ada, params={"format": "gpx"})
    assert exported.status_code == 200, exported.text
    parsed = gpxpy.parse(exported.text)
    points = [p for track in parsed.tracks for segment in track.segments for p in segment.points]
    assert len(points) >= 0.95 * run["samples"], (len(points), run["samples"])
    assert all(p.time is not None for p in points)
    assert abs(parsed.length_2d() - details["distance_m"]) / details["distance_m"] < 0.02, (parsed.length_2d(), details["distance_m"])

    r = server.api("PATCH", f"/workouts/{ride['workout_id']}", user=ada,
                   json={"name": "Commute", "visibility": "followers", "sport": "cycling", "tags": ["commute"]})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["visibility"], r.json()["tags"]) == ("Commute", "followers", ["commute"])
    deadline = time.time() + 10
    while True:
        events = [json.loads(line) for p in (data / "events").glob("*.jsonl") for line in p.read_text().splitlines()]
        edited = [e for e in events if e["type"] == "WorkoutEdited"]
        if edited or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(edited) == 1, "one edit, one event"
    twclient.validate_event(edited[0])
    assert edited[0]["data"]["visibility"] == "followers" and set(edited[0]["data"]["changed"]) >= {"name", "visibility", "tags"}

    r = server.api("DELETE", f"/workouts/{run['workout_id']}", user=ada)
    assert r.status_code == 204, r.text

    def nothing_of_the_run():
        assert run["workout_id"] not in lake_ids(lake, "points")
        assert run["workout_id"] not in lake_ids(lake, "workouts")
        assert run["workout_id"] not in stored_ids(lake, "points")
        assert run["workout_id"] not in stored_ids(lake, "workouts")
        assert ride["workout_id"] in lake_ids(lake, "points"), "the other workout's rows stay"
        listed = [w["workout_id"] for w in server.api("GET", "/workouts", user=ada).json()["workouts"]]
        assert listed == [ride["workout_id"]], listed
        assert server.api("GET", f"/workouts/{run['workout_id']}", user=ada).status_code == 404
        assert server.api("GET", f"/workouts/{ride['workout_id']}", user=ada).json()["name"] == "Commute"
        events = "".join(p.read_text() for p in (data / "events").glob("*.jsonl"))
        assert run["workout_id"] not in events and ride["workout_id"] in events

    nothing_of_the_run()
    told = [json.loads(line) for line in (data / "events" / "tombstones.ndjson").read_text().splitlines()]
    twclient.validate_event(told[-1])
    assert (told[-1]["type"], told[-1]["workout_id"]) == ("WorkoutDeleted", run["workout_id"])

    server.stop()
    server = server_factory(data).start()
    time.sleep(1.5)
    nothing_of_the_run()

    # The same file uploaded again is the workout again, whole, under the same id.
    again = wait_upload(server, upload(server, RUN_FIT, user=ada)["id"], user=ada)
    assert (again["status"], again["workout_id"], again.get("duplicate_of")) == ("ready", run["workout_id"], None), again
    back = wait_workout(server, run["workout_id"], user=ada)
    assert (back["samples"], back["distance_m"]) == (details["samples"], details["distance_m"]), back


def test_coordinate_retention_counts_from_storage_so_an_imported_recording_keeps_its_route(server_factory, tmp_path):
    """A years-old recording imported today keeps its positions, route and polyline for the whole
    retention window (it counts from when Trackwire stored the data); a cut past the import drops
    them everywhere and keeps every total."""
    data = tmp_path / "data"
    server = server_factory(data, TRACKWIRE_PRIVACY__COORDINATE_RETENTION_DAYS=30).start()
    up = wait_upload(server, upload(server, RUN_FIT)["id"])
    workout_id = up["workout_id"]
    before = wait_workout(server, workout_id)
    assert before["start_time"] < "2020-01-01T00:00:00.000Z", "a recording from before 2020"
    deadline = time.time() + 30
    while workout_id not in lake_ids(data / "lake", "points"):
        assert time.time() < deadline
        time.sleep(0.2)

    def positions():
        details = server.api("GET", f"/workouts/{workout_id}").json()
        streams = server.api("GET", f"/workouts/{workout_id}/streams", params={"keys": "latlng,distance"}).json()
        points = twclient.delta_table(data / "lake", "points").to_pyarrow_table()
        lake, total = duckdb.sql(
            f"select count(lat) + count(lon) + count(smoothed_lat), count(*) from points where workout_id = '{workout_id}'"
        ).fetchall()[0]
        assert total > 100
        return details, sum(p is not None for p in streams["latlng"]["data"]), lake, streams

    assert server.api("POST", "/admin/retention").status_code == 403, "needs the admin scope"
    r = server.api("POST", "/admin/retention", admin=True)
    assert r.status_code == 200, r.text
    details, in_store, in_lake, _ = positions()
    assert details["map"]["summary_polyline"], "the route of an import survives the policy's cut"
    assert in_store > 100 and in_lake > 300, (in_store, in_lake)

    assert server.api("POST", "/admin/retention", admin=True, params={"before": "2999-01-01T00:00:00Z"}).status_code == 400
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    time.sleep(1.5)
    r = server.api("POST", "/admin/retention", admin=True, params={"before": now})
    assert r.status_code == 200, r.text
    assert r.json()["positions_dropped_before"].startswith(now[:19])
    details, in_store, in_lake, streams = positions()
    assert details["map"]["summary_polyline"] is None
    assert in_store == 0 and in_lake == 0
    for key in ("distance_m", "moving_time_s", "elevation_gain_m", "calories_kcal"):
        assert details[key] == before[key], key
    assert streams["distance"]["data"][-1] > 0
    points = twclient.delta_table(data / "lake", "points").to_pyarrow_table()
    stored = duckdb.sql("select min(stored_at) > now() - interval 1 hour from points").fetchall()[0][0]
    assert stored, "stored_at says when Trackwire stored each row"


def test_rs256_tokens_from_a_jwks_file(server_factory, tmp_path):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "kc-1", "alg": "RS256", "use": "sig"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    issuer = "https://keycloak.test/realms/trackwire"
    server = server_factory(
        TRACKWIRE_AUTH__JWKS_FILE=jwks, TRACKWIRE_AUTH__ISSUER=issuer, TRACKWIRE_AUTH__HS256_SECRET="", TRACKWIRE_AUTH__AUDIENCE="trackwire-app"
    ).start()

    def call(private_key, **claims):
        body = {"sub": "kc-user", "iss": issuer, "aud": "trackwire-app", "exp": int(time.time()) + 60, **claims}
        token = jwt.encode(body, private_key, algorithm="RS256", headers={"kid": "kc-1"})
        return server.api("GET", "/workouts", user=None, headers={"Authorization": f"Bearer {token}"})

    assert call(key).status_code == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert call(stranger).status_code == 401, "signed by another key"
    assert call(key, aud="someone-else").status_code == 401, "wrong audience"
    assert call(key, exp=int(time.time()) - 600).status_code == 401, "expired"
    hs = server.api("GET", "/workouts")  # an HS256 token: no HS256 secret is configured
    assert hs.status_code == 401


def test_jwks_url_is_fetched_and_refetched_when_the_provider_rotates_keys(server_factory, tmp_path):
    import http.server
    import threading

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    def jwk(private_key, kid):
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
        public.update({"kid": kid, "alg": "RS256", "use": "sig"})
        return public

    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    published = {"keys": [jwk(old, "2025")]}

    class Certs(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(published).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Certs)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{provider.server_port}/realms/tw/protocol/openid-connect/certs"
    server = server_factory(TRACKWIRE_AUTH__JWKS_URL=url, TRACKWIRE_AUTH__HS256_SECRET="", TRACKWIRE_AUTH__ISSUER="").start()

    def call(private_key, kid):
        token = jwt.encode({"sub": "rotating", "exp": int(time.time()) + 60}, private_key, algorithm="RS256", headers={"kid": kid})
        return server.api("GET", "/workouts", user=None, headers={"Authorization": f"Bearer {token}"}).status_code

    assert call(old, "2025") == 200
    assert call(new, "2026") == 401, "not published yet"
    published["keys"].append(jwk(new, "2026"))  # the provider rotates
    deadline = time.time() + 40  # refetches are at most every 30 s
    while call(new, "2026") != 200:
        assert time.time() < deadline, "the new key was never fetched"
        time.sleep(1)
    provider.shutdown()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server_factory, tmp_path):
    # Callback URLs it makes up are challenged: give up on those quickly.
    server = server_factory(
        TRACKWIRE_API__RATE_LIMIT__PER_MINUTE=1_000_000, TRACKWIRE_API__RATE_LIMIT__BURST=1_000_000, TRACKWIRE_PUSH__TIMEOUT_SECS=1
    ).start()
    # Something to find: one workout for the caller.
    wait_upload(server, upload(server, RUN_FIT)["id"])
    st = twclient.VENV / "bin" / "schemathesis"
    report = tmp_path / "schemathesis"
    result = subprocess.run(
        [
            str(st), "run", f"{server.url}/api/v1/openapi.json",
            "--url", server.url,
            "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--header", f"Authorization: Bearer {twclient.jwt(twclient.DEFAULT_USER)}",
            "--max-examples", os.environ.get("TRACKWIRE_SCHEMATHESIS_EXAMPLES", "25"),
            "--exclude-path", "/v1/ingest",
            "--seed", "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    print(result.stdout[-20000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_trackwire_token_signs_with_the_servers_secret_or_says_where_it_looked(server_factory, tmp_path):
    # The development secret, as `trackwire serve` on embedded defaults makes it (no auth settings).
    server = server_factory(TRACKWIRE_AUTH__HS256_SECRET="", TRACKWIRE_AUTH__ISSUER="").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKWIRE_")}
    mint = [str(twclient.trackwire_bin()), "token", "--user", "cli-user"]
    minted = subprocess.run(mint + ["--data-dir", str(server.data_dir)], capture_output=True, text=True, env=env, timeout=30)
    assert minted.returncode == 0, minted.stderr
    r = server.api("GET", "/workouts", user=None, headers={"Authorization": f"Bearer {minted.stdout.strip()}"})
    assert r.status_code == 200, r.text
    # Run where no server ever ran: a clear refusal, and no new secret the server would not know.
    elsewhere = tmp_path / "not-a-server"
    elsewhere.mkdir()
    refused = subprocess.run(mint, capture_output=True, text=True, env=env, timeout=30, cwd=elsewhere)
    assert refused.returncode != 0 and "dev-jwt.secret" in refused.stderr and "--data-dir" in refused.stderr, refused.stderr
    assert not any(elsewhere.rglob("dev-jwt.secret"))
    server.stop()


def test_a_file_is_the_same_workout_through_the_cli_and_the_upload_api(server_factory):
    server = server_factory().start()
    uploaded = wait_upload(server, upload(server, RUN_FIT)["id"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKWIRE_")}
    printed = subprocess.run(
        [str(twclient.trackwire_bin()), "import", "--json", "--user", twclient.DEFAULT_USER, str(RUN_FIT)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout.splitlines()[0])["workout_id"] == uploaded["workout_id"]
    # The CLI's upload lands on the workout the API made: acked as duplicates, nothing new.
    sent = subprocess.run(
        [str(twclient.trackwire_bin()), "import", "--server", server.url, "--token", twclient.TOKEN,
         "--user", twclient.DEFAULT_USER, str(RUN_FIT)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert sent.returncode == 0, sent.stderr
    listed = server.api("GET", "/workouts").json()["workouts"]
    assert [w["workout_id"] for w in listed] == [uploaded["workout_id"]], listed
    server.stop()


def test_https_on_the_http_listener_serves_ingest_and_the_api(server_factory, tmp_path):
    """With [tls] set, the HTTP listener speaks only TLS: ingest and the API over HTTPS with the
    configured certificate, and a plain-HTTP request gets no answer from it."""
    import requests

    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = server_factory(TRACKWIRE_TLS__CERT_PATH=str(cert), TRACKWIRE_TLS__KEY_PATH=str(key)).start()
    assert server.url.startswith("https://")
    points = twclient.parse_gpx(RIDE_GPX)[:20]
    acked = requests.post(server.url + "/v1/ingest", data=twclient.encode_batch(points, uuid.uuid4(), 0), timeout=30,
                          headers={"Authorization": "Bearer dev-token"}, verify=str(cert))
    assert acked.status_code == 200, acked.text
    listed = requests.get(server.url + "/api/v1/workouts", timeout=30, verify=str(cert),
                          headers={"Authorization": f"Bearer {twclient.jwt(twclient.DEFAULT_USER)}"})
    assert listed.status_code == 200, listed.text
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{server.port}/healthcheck", timeout=5)
    server.stop()


def test_a_workout_deleted_while_its_watch_still_streams_stays_deleted(server_factory, tmp_path):
    """The owner deletes a workout in progress; the watch does not know and keeps sending, then
    completes it. Its batches are acked (they are durable) but nothing of the workout comes back:
    not in the API, the lake or the event lines, neither at once nor after a restart's replay.
    The same recording sent again from its start afterwards (a file imported again) is a new
    workout under the same id, built from that recording alone."""
    data = tmp_path / "data"
    server = server_factory(data).start()
    points = twclient.parse_gpx(RUN_GPX)[:600]
    workout = uuid.uuid4()
    bodies = twclient.batches_of(points, 100, workout)
    for body in bodies[:3]:
        assert server.post(body).status_code == 200
    deadline = time.time() + 10
    while server.api("GET", f"/workouts/{workout}").status_code != 200:
        assert time.time() < deadline, "the live workout is never served"
        time.sleep(0.1)
    r = server.api("DELETE", f"/workouts/{workout}")
    assert r.status_code == 204, r.text
    for body in bodies[3:]:
        assert server.post(body).status_code == 200

    lake = data / "lake"

    def nothing_of_it():
        assert server.api("GET", f"/workouts/{workout}").status_code == 404
        listed = [w["workout_id"] for w in server.api("GET", "/workouts").json()["workouts"]]
        assert str(workout) not in listed, listed
        assert str(workout) not in lake_ids(lake, "points") | lake_ids(lake, "workouts")
        events = "".join(p.read_text() for p in (data / "events").glob("*.jsonl"))
        assert str(workout) not in events

    time.sleep(2)  # past a flush of the read store, the event log and the lake's age limit
    nothing_of_it()
    metrics = requests.get(server.url + "/metrics", timeout=5).text
    assert 'trackwire_pipeline_batches_not_applied_total{reason="deleted"} 3' in metrics, metrics
    server.stop()
    server.start()
    time.sleep(2)
    nothing_of_it()

    for body in twclient.batches_of(points[:200], 100, workout):
        assert server.post(body).status_code == 200
    again = wait_workout(server, workout)
    assert again["samples"] == 200, again
    server.stop()
    server.start()
    time.sleep(2)
    after = server.api("GET", f"/workouts/{workout}").json()
    assert (after["status"], after["samples"], after["distance_m"]) == ("completed", 200, again["distance_m"]), after


def test_a_user_erased_while_a_watch_still_records_stays_erased(server_factory, tmp_path):
    """A user is erased while one of their watches records (with a token the erasure does not
    revoke, or a batch already past the token check): the rest of that recording is acked but
    brings nothing of the user back, neither at once nor after a restart's replay."""
    data = tmp_path / "data"
    server = server_factory(data).start()
    user = "erased-while-recording"
    points = twclient.parse_gpx(RUN_GPX)[:600]
    workout = uuid.uuid4()
    bodies = twclient.batches_of(points, 100, workout, user_id=user)
    for body in bodies[:3]:
        assert server.post(body).status_code == 200
    deadline = time.time() + 10
    while server.api("GET", f"/workouts/{workout}", user=user).status_code != 200:
        assert time.time() < deadline, "the live workout is never served"
        time.sleep(0.1)
    r = server.api("DELETE", f"/users/{user}", user=user)
    assert r.status_code == 200, r.text
    for body in bodies[3:]:
        assert server.post(body).status_code == 200

    lake = data / "lake"

    def nothing_of_the_user():
        assert server.api("GET", f"/workouts/{workout}", user=user).status_code == 404
        assert server.api("GET", "/workouts", user=user).json()["workouts"] == []
        assert str(workout) not in lake_ids(lake, "points") | lake_ids(lake, "workouts")
        events = "".join(p.read_text() for p in (data / "events").glob("*.jsonl"))
        assert str(workout) not in events and user not in events

    time.sleep(2)  # past a flush of the read store, the event log and the lake's age limit
    nothing_of_the_user()
    server.stop()
    server.start()
    time.sleep(2)
    nothing_of_the_user()


def recorded_gpx(start_s: int, points: int, seed: int) -> bytes:
    """A GPX run of `points` one-second fixes wandering at random, so it compresses as little as a
    real recording's noise does."""
    import random

    rng = random.Random(seed)
    lat, lon, ele = 46.0 + rng.random(), 14.0 + rng.random(), 300.0
    rows = []
    for i in range(points):
        lat += rng.uniform(-2e-5, 4e-5)
        lon += rng.uniform(-2e-5, 4e-5)
        ele += rng.uniform(-0.4, 0.4)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s + i))
        rows.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>{ele:.1f}</ele><time>{stamp}</time>'
                    f'<extensions><hr>{rng.randint(110, 175)}</hr></extensions></trkpt>')
    return ('<?xml version="1.0"?><gpx version="1.1" creator="test"><trk><type>running</type><trkseg>'
            + "".join(rows) + "</trkseg></trk></gpx>").encode()


def test_a_long_historys_archive_is_written_as_it_is_downloaded(server_factory):
    """A user's archive many times larger than what the server may hold for it: while it is
    downloaded the server's memory grows by a small part of it, and it holds every workout's GPX
    and uploaded file."""
    import io
    import tarfile
    import threading

    # A hundred uploads and their polls are more than the default burst of requests.
    server = server_factory(TRACKWIRE_API__RATE_LIMIT__PER_MINUTE=100_000, TRACKWIRE_API__RATE_LIMIT__BURST=100_000).start()
    workouts, points = 100, 7_200
    day_s = 86_400
    first_day = int(time.time()) // day_s * day_s - (workouts + 10) * day_s
    uploads, held_bytes = [], 0
    for n in range(workouts):
        data = recorded_gpx(first_day + n * day_s + 7 * 3600, points, seed=n)
        held_bytes += 2 * len(data)  # the file, and its GPX written again
        uploads.append(upload(server, Path(f"run-{n}.gpx"), data=data)["id"])
    for upload_id in uploads:
        done = wait_upload(server, upload_id, timeout=300)
        assert done["status"] == "ready", done

    pid = server.proc.pid
    # The sinks may still be settling the uploads: idle is the most they take over a second.
    idle_kib = 0
    for _ in range(100):
        idle_kib = max(idle_kib, twclient.resident_kib(pid))
        time.sleep(0.01)
    peak_kib, done = [idle_kib], threading.Event()

    def watch():
        while not done.is_set():
            peak_kib[0] = max(peak_kib[0], twclient.resident_kib(pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    archive = io.BytesIO()
    with server.api("GET", "/users/me/export", stream=True, timeout=300) as r:
        assert r.status_code == 200, r.text
        for chunk in r.iter_content(64 << 10):
            archive.write(chunk)
    done.set()
    watcher.join(timeout=30)

    names = tarfile.open(fileobj=io.BytesIO(archive.getvalue()), mode="r:gz").getnames()
    assert sum(n.endswith(".gpx") and "/workouts/" in n for n in names) == workouts, names
    assert sum("/originals/" in n for n in names) == workouts, names
    grown_mib = (peak_kib[0] - idle_kib) / 1024
    print(f"archive {archive.tell() / 2**20:.0f} MiB gzipped of ~{held_bytes / 2**20:.0f} MiB of files; "
          f"RSS idle {idle_kib / 1024:.0f} MiB, +{grown_mib:.0f} MiB while it was downloaded")
    assert grown_mib < held_bytes / 2**20 / 4, f"RSS grew by {grown_mib:.0f} MiB for ~{held_bytes / 2**20:.0f} MiB of files"
