"""The event stream a consuming service reads (here the embedded event log; test_kafka.py and
test_scale_out.py read the Kafka topic): every event of every type validates against the JSON
Schema published for it in docs/events/, with an independent validator (jsonschema), and carries
the seed's payload: where the workout started, its route when it completed."""
import datetime
import json
import time
import uuid


import requests
import twclient
from twclient import ControlKind

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"  # 988 samples


def test_every_event_type_validates_against_its_published_schema(server_factory):
    server = server_factory().start()
    points = twclient.parse_gpx(TRACE)
    done, cancelled = uuid.uuid4(), uuid.uuid4()
    chunks = [points[i : i + 100] for i in range(0, len(points), 100)]
    for seq, chunk in enumerate(chunks):
        events = []
        if seq == 0:
            events.append((chunk[0].time_ms, ControlKind.Start))
        if seq == 3:
            events += [(chunk[10].time_ms, ControlKind.Pause), (chunk[20].time_ms, ControlKind.Resume)]
        if seq == len(chunks) - 1:
            events.append((chunk[-1].time_ms, ControlKind.Complete))
        assert server.post(twclient.encode_batch(chunk, done, seq, events=events)).status_code == 200
    short = points[:30]
    events = [(short[0].time_ms, ControlKind.Start), (short[-1].time_ms, ControlKind.Cancel)]
    assert server.post(twclient.encode_batch(short, cancelled, 0, events=events)).status_code == 200
    served = None
    for _ in range(100):
        served = server.api("GET", f"/workouts/{done}").json()
        if served.get("status") == "completed":
            break
        time.sleep(0.1)
    server.stop()

    events = twclient.read_events(server.data_dir)  # each one validated against its schema
    kinds = {e["type"] for e in events}
    assert kinds == {"WorkoutStarted", "WorkoutUpdated", "WorkoutPaused", "WorkoutResumed", "WorkoutCompleted", "WorkoutCancelled"}, kinds
    mine = [e for e in events if e["workout_id"] == str(done)]
    started = next(e["data"] for e in mine if e["type"] == "WorkoutStarted")
    assert (started["user_id"], started["sport_type"], started["device_model"]) == ("py-user-1", "running", "python-flatbuffers")
    assert abs(started["location"]["latitude"] - points[0].lat) < 1e-4, started["location"]
    completed = next(e["data"] for e in mine if e["type"] == "WorkoutCompleted")
    route = completed["route_coordinates"]
    assert 2 <= len(route) <= 49 and route[0] == started["location"]
    assert abs(route[-1]["longitude"] - points[-1].lon) < 1e-4, route[-1]
    updated = [e["data"] for e in mine if e["type"] == "WorkoutUpdated"]
    distances = [u["current_distance_meters"] for u in updated]
    assert distances == sorted(distances) and abs(distances[-1] - completed["distance_meters"]) < 1e-6
    paused = next(e["data"] for e in mine if e["type"] == "WorkoutPaused")
    assert paused["status"] == "paused" and 0 < paused["distance_meters"] < completed["distance_meters"]

    # The API serves the same workout with the same figures.
    assert abs(served["distance_m"] - completed["distance_meters"]) < 1e-6, served
    assert served["start_time"] == started["start_time"]


def test_every_published_schema_is_a_valid_json_schema():
    import jsonschema

    schemas = sorted(twclient.EVENT_SCHEMAS.glob("*.schema.json"))
    assert {p.name.split(".")[0] for p in schemas} >= {"WorkoutStarted", "WorkoutCompleted", "UserErased"}
    for path in schemas:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_a_profile_change_and_a_new_tag_are_published_in_the_event_stream(server_factory):
    server = server_factory().start()
    points = twclient.parse_gpx(TRACE)[:200]
    workout = uuid.uuid4()
    for body in twclient.batches_of(points, 100, workout):
        assert server.post(body).status_code == 200
    profile = {"weight_kg": 70.5, "birth_year": 1985, "sex": "female", "hr_max_bpm": 188, "hr_rest_bpm": 50}
    assert server.api("PUT", "/users/me/profile", json=profile).status_code == 200
    for _ in range(100):
        if server.api("GET", f"/workouts/{workout}").status_code == 200:
            break
        time.sleep(0.1)
    r = server.api("POST", f"/workouts/{workout}/tags", json={"tag": " race "})
    assert r.status_code == 200, r.text
    assert r.json() == {"workout_id": str(workout), "tags": ["race"]}
    assert server.api("POST", f"/workouts/{workout}/tags", json={"tag": "race"}).json()["tags"] == ["race"], "no twice"
    assert server.api("POST", f"/workouts/{workout}/tags", json={"tag": "hills"}).json()["tags"] == ["race", "hills"]
    assert server.api("GET", f"/workouts/{workout}").json()["tags"] == ["race", "hills"]
    # Only the owner tags; a bad tag is refused with the field named.
    assert server.api("POST", f"/workouts/{workout}/tags", json={"tag": "x"}, user="mallory").status_code == 404
    bad = server.api("POST", f"/workouts/{workout}/tags", json={"tag": "x" * 65})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "tag", bad.text
    server.stop()

    events = twclient.read_events(server.data_dir)  # each validated against its schema
    metrics = [e for e in events if e["type"] == "UserMetricsUpdated"]
    assert len(metrics) == 1 and metrics[0]["workout_id"] is None
    assert {k: metrics[0]["data"][k] for k in profile} == profile and metrics[0]["user_id"] == "py-user-1"
    tagged = [e for e in events if e["type"] == "WorkoutTagAdded"]
    assert [e["data"]["tag"] for e in tagged] == ["race", "hills"], "one event per new tag"
    assert all(e["workout_id"] == str(workout) for e in tagged) and tagged[-1]["data"]["tags"] == ["race", "hills"]
    assert len({e["event_id"] for e in events}) == len(events)


def test_a_workout_whose_device_falls_silent_is_completed_by_the_idle_timeout(server_factory):
    """A watch that died mid-run never sends Complete. After `pipeline.idle_timeout_secs` without
    a batch the server completes the workout as of its last sample: `WorkoutCompleted` with
    `end_reason: idle_timeout`, the lake row, best efforts, and the log segments it pinned are
    released. A restart replays the decision, it does not make another. A batch that comes after
    it is acked and kept, not applied, and counted."""
    small = 16384  # segments roll every few batches, so the first ones can be released
    server = server_factory(
        TRACKWIRE_PIPELINE__IDLE_TIMEOUT_SECS=2,
        TRACKWIRE_LOG__SEGMENT_BYTES=small,
        TRACKWIRE_QUIC__MAX_FRAME_BYTES=small,
        TRACKWIRE_INGEST__MAX_DECOMPRESSED_BYTES=small,
        TRACKWIRE_INGEST__MAX_BODY_BYTES=small,
    ).start()
    points = twclient.parse_gpx(TRACE)
    workout = uuid.uuid4()
    for seq, chunk in enumerate(points[i : i + 100] for i in range(0, len(points), 100)):
        events = [(chunk[0].time_ms, ControlKind.Start)] if seq == 0 else []
        assert server.post(twclient.encode_batch(chunk, workout, seq, events=events)).status_code == 200
    segments = lambda: sorted((server.data_dir / "log").glob("*.twlog"))  # noqa: E731
    first_segment = segments()[0]
    assert len(segments()) >= 2, segments()

    # A device may not write in the server's seq range.
    refused = server.post(twclient.encode_batch(points[:2], uuid.uuid4(), 2**63))
    assert (refused.status_code, refused.json()["error"]) == (400, "reserved_seq"), refused.text

    served = {}
    for _ in range(150):
        served = server.api("GET", f"/workouts/{workout}").json()
        if served.get("status") == "completed" and served.get("best_efforts") and not first_segment.exists():
            break
        time.sleep(0.1)
    assert served.get("status") == "completed" and served["end_reason"] == "idle_timeout", served
    last = datetime.datetime.fromtimestamp(points[-1].time_ms / 1000, datetime.timezone.utc)
    assert served["end_time"] == last.strftime("%Y-%m-%dT%H:%M:%S.") + f"{points[-1].time_ms % 1000:03d}Z", served
    assert "1k" in served["best_efforts"], served["best_efforts"]
    assert not first_segment.exists(), f"the workout still pins the log: {segments()}"
    table = twclient.delta_table(server.data_dir / "lake", "workouts")
    rows = [r for r in table.to_pyarrow_table().to_pylist() if r["workout_id"] == str(workout)]
    assert [(r["status"], r["end_reason"]) for r in rows] == [("completed", "idle_timeout")], rows
    metrics = requests.get(server.url + "/metrics", timeout=5).text
    assert 'trackwire_workouts_ended_total{reason="idle_timeout"} 1' in metrics, metrics
    # The watch comes back: its batch is durable (acked, kept in the log) but the workout has
    # ended, so it is not applied, and that is counted rather than silent.
    late = server.post(twclient.encode_batch(points[-2:], workout, seq + 1))
    assert late.status_code == 200, late.text
    not_applied = 'trackwire_pipeline_batches_not_applied_total{reason="after_end"} 1'
    for _ in range(50):
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        if not_applied in metrics:
            break
        time.sleep(0.1)
    assert not_applied in metrics, metrics
    assert server.api("GET", f"/workouts/{workout}").json()["samples"] == served["samples"]
    server.stop()

    # The restart replays what the log still holds: the workout's later batches without its
    # first (released), the server's decision and the late batch. None of it starts the workout
    # again, so no second timeout ends a fragment of it over the stored workout.
    server.start()
    time.sleep(3)  # past another idle timeout
    completed = [e for e in twclient.read_events(server.data_dir, str(workout)) if e["type"] == "WorkoutCompleted"]
    assert len(completed) == 1 and completed[0]["data"]["end_reason"] == "idle_timeout", completed
    assert completed[0]["data"]["end_time"] == served["end_time"]
    after = server.api("GET", f"/workouts/{workout}").json()
    assert (after["status"], after["samples"], after["distance_m"]) == ("completed", served["samples"], served["distance_m"]), after
    server.stop()
