"""Kafka for real (tansu): a recorded trace's events arrive in order with the seed's names and
shape and its points decode; a 20 s broker outage loses nothing acked; with the broker down the
log's cap makes ingest push back, and ingest recovers when the broker returns."""
import json
import threading
import time
import uuid
from collections import Counter

import pyarrow as pa
import requests

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"  # 988 samples
EVENTS, POINTS = "trackwire.workout-events.v2", "trackwire.points.v1"


def kafka_env(broker, **extra):
    return {"TRACKWIRE_KAFKA__BROKERS": broker.bootstrap, "TRACKWIRE_KAFKA__PARTITIONS": "3", **extra}


def points_rows(messages):
    """(workout_id, seq, sample_index) of every row of every points message."""
    rows = []
    for _, _, _, value, headers in messages:
        assert headers["content-type"] == b"application/vnd.apache.arrow.stream"
        table = pa.ipc.open_stream(value).read_all()
        rows += zip(table["workout_id"].to_pylist(), table["seq"].to_pylist(), table["sample_index"].to_pylist())
    return rows


def test_events_arrive_in_order_with_the_seeds_shape_and_points_decode(server_factory, kafka_broker, s3_server):
    # The whole fan-out at once: Kafka for the services, the lake on S3 for the ML team.
    server = server_factory(**kafka_env(kafka_broker, **s3_server.env("s3://lake/e2e"))).start()
    points = twclient.parse_gpx(TRACE)
    workout = uuid.uuid4()
    for body in twclient.batches_of(points, 100, workout):
        assert server.post(body).status_code == 200
    server.stop()  # waits for the broker to confirm what is outstanding

    events = [m for m in kafka_broker.read_topic(EVENTS) if m[2] == str(workout).encode()]
    assert len({m[0] for m in events}) == 1, "one key, one partition"
    events.sort(key=lambda m: m[1])
    bodies = [json.loads(m[3]) for m in events]
    kinds = [b["type"] for b in bodies]
    assert kinds[0] == "WorkoutStarted" and kinds[-1] == "WorkoutCompleted", kinds
    assert set(kinds[1:-1]) == {"WorkoutUpdated"} and len(kinds) == 12, kinds
    for body in bodies:
        twclient.validate_event(body)  # the seed's envelope and payload, as docs/events/ publishes them
        assert body["workout_id"] == str(workout) == body["data"]["workout_id"] and body["schema_version"] == 3
        assert body["user_id"] == "py-user-1"
    started, completed = bodies[0]["data"], bodies[-1]["data"]
    assert started["sport_type"] == "running" and started["start_time"] == bodies[0]["timestamp"]
    first = points[0]
    assert abs(started["location"]["latitude"] - first.lat) < 1e-4 and abs(started["location"]["longitude"] - first.lon) < 1e-4
    route = completed["route_coordinates"]
    assert 2 <= len(route) <= 49 and route[0] == started["location"], route[:2]
    assert abs(route[-1]["latitude"] - points[-1].lat) < 1e-4, route[-1]
    assert completed["distance_meters"] > 0 and completed["duration_sec"] > 0
    assert len({b["event_id"] for b in bodies}) == len(bodies)
    headers = events[0][4]
    assert headers["schema-version"] == b"3" and headers["content-type"] == b"application/json"
    assert len(headers["trace-id"]) == 32

    rows = [r for r in points_rows(kafka_broker.read_topic(POINTS)) if r[0] == str(workout)]
    assert len(rows) == len(points) == 988
    assert max(Counter(rows).values()) == 1

    lake = [r for r in twclient.read_points_s3(s3_server, "lake/e2e") if r["workout_id"] == str(workout)]
    assert len(lake) == 988 and max(Counter((r["seq"], r["sample_index"]) for r in lake).values()) == 1


def test_a_20_second_broker_outage_loses_nothing_acked(server_factory, kafka_broker):
    server = server_factory(**kafka_env(kafka_broker)).start()
    points = twclient.parse_gpx(TRACE)
    workouts = [uuid.uuid4() for _ in range(6)]
    acked = []

    def ingest():
        for w in workouts:
            for body in twclient.batches_of(points, 50, w):
                r = server.post(body, timeout=60)
                assert r.status_code == 200, r.text
                acked.append(w)
                time.sleep(0.05)

    steady = threading.Thread(target=ingest, daemon=True)
    steady.start()
    time.sleep(2)
    kafka_broker.pause()
    outage_start = len(acked)
    time.sleep(20)
    during = len(acked) - outage_start
    health = requests.get(server.url + "/healthcheck", timeout=5).json()
    kafka = next(s for s in health["sinks"] if s["name"] == "kafka")
    kafka_broker.resume()
    steady.join(timeout=120)
    assert not steady.is_alive()
    assert during > 0, "ingest kept acking into the log during the outage"
    assert kafka["lag_records"] > 0, f"the outage shows as lag on /healthcheck: {kafka}"
    server.stop()

    rows = points_rows(kafka_broker.read_topic(POINTS))
    counts = Counter(rows)
    duplicates = sum(c - 1 for c in counts.values())
    print(f"broker outage: {len(rows)} rows, {duplicates} duplicates")
    for w in workouts:
        assert sum(1 for k in counts if k[0] == str(w)) == len(points), f"workout {w} is missing samples"
    assert duplicates == 0, f"{duplicates} duplicated samples"


def test_with_the_broker_down_the_log_cap_pushes_back_and_ingest_recovers(server_factory, kafka_broker):
    small = {
        "TRACKWIRE_LOG__SEGMENT_BYTES": str(64 * 1024),
        "TRACKWIRE_LOG__MAX_RETAINED_BYTES": str(256 * 1024),
        "TRACKWIRE_INGEST__MAX_DECOMPRESSED_BYTES": str(64 * 1024),
        "TRACKWIRE_INGEST__MAX_BODY_BYTES": str(64 * 1024),
        "TRACKWIRE_QUIC__MAX_FRAME_BYTES": str(64 * 1024),
    }
    server = server_factory(**kafka_env(kafka_broker, **small)).start()
    kafka_broker.pause()
    points = twclient.parse_gpx(TRACE)
    refused = None
    sent = 0
    for i in range(200):
        # A whole (completed) workout per batch: a live workout would pin its log records.
        (body,) = twclient.batches_of(points[:100], 100, uuid.uuid4())
        r = server.post(body)
        if r.status_code == 503:
            refused = body
            break
        assert r.status_code == 200, r.text
        sent += 1
    assert refused is not None, "the log cap never pushed back"
    assert r.json()["error"] == "overloaded" and "Retry-After" in r.headers
    assert requests.get(server.url + "/healthcheck", timeout=5).json()["log_at_cap"] is True
    assert "trackwire_log_at_cap 1" in requests.get(server.url + "/metrics", timeout=5).text
    log_bytes = sum(p.stat().st_size for p in (server.data_dir / "log").iterdir())
    assert log_bytes < 256 * 1024 + 64 * 1024 + 16 * 1024 * 4, f"the log grew to {log_bytes} bytes"
    kafka_broker.resume()
    deadline = time.time() + 60
    while time.time() < deadline:
        r = server.post(refused)
        if r.status_code == 200:
            break
        time.sleep(0.5)
    assert r.status_code == 200, "ingest did not recover after the broker came back"
    server.stop()
    assert len(points_rows(kafka_broker.read_topic(POINTS))) == (sent + 1) * 100


def test_erasing_a_user_publishes_tombstones(server_factory, kafka_broker):
    server = server_factory(**kafka_env(kafka_broker)).start()
    user = "kafka-erased"
    r = server.api("POST", "/uploads", user=user, files={"file": (TRACE.name, TRACE.read_bytes())})
    assert r.status_code == 202, r.text
    deadline = time.time() + 60
    while (upload := server.api("GET", f"/uploads/{r.json()['id']}", user=user).json())["status"] == "processing":
        assert time.time() < deadline
        time.sleep(0.1)
    workout = upload["workout_id"]
    while server.api("GET", f"/workouts/{workout}", user=user).status_code != 200:
        assert time.time() < deadline
        time.sleep(0.1)
    assert server.api("DELETE", "/users/me", user=user).status_code == 200
    server.stop()
    for topic in (EVENTS, POINTS):
        mine = [m for m in kafka_broker.read_topic(topic) if m[2] == workout.encode()]
        assert mine and mine[-1][3] is None, f"the last message for the workout on {topic} is a tombstone"
    erased = [json.loads(m[3]) for m in kafka_broker.read_topic(EVENTS) if m[2] == user.encode()]
    assert erased and erased[-1]["type"] == "UserErased" and workout in erased[-1]["data"]["workout_ids"]
    twclient.validate_event(erased[-1])


def test_a_batch_larger_than_a_kafka_message_is_delivered_in_parts_and_nothing_sticks(server_factory, kafka_broker):
    # 12,000 samples of one offline batch are about 1.3 MB as one Arrow IPC message: beyond the
    # producer's 1 MB message.max.bytes. The batch must reach Kafka (in several messages) and the
    # sink's checkpoint must pass it, instead of freezing until the log fills and ingest answers 503.
    server = server_factory(**kafka_env(kafka_broker)).start()
    base = twclient.parse_gpx(TRACE)
    t0 = base[0].time_ms
    points = [
        twclient.Point(t0 + i * 1000, base[i % len(base)].lat, base[i % len(base)].lon, base[i % len(base)].ele, 140, 85)
        for i in range(12_000)
    ]
    workout = uuid.uuid4()
    (big,) = twclient.batches_of(points, len(points), workout, complete=False)
    r = server.post(big)
    assert r.status_code == 200, r.text
    (last,) = [twclient.encode_batch(points[-1:], workout, 1, events=[(points[-1].time_ms, twclient.ControlKind.Complete)])]
    assert server.post(last).status_code == 200
    deadline = time.time() + 60
    while True:
        kafka = next(s for s in requests.get(server.url + "/healthcheck", timeout=5).json()["sinks"] if s["name"] == "kafka")
        if kafka["lag_records"] == 0:
            break
        assert time.time() < deadline, f"the kafka sink is stuck behind the large batch: {kafka}"
        time.sleep(0.5)
    server.stop()
    messages = [m for m in kafka_broker.read_topic(POINTS) if m[2] == str(workout).encode()]
    assert len(messages) > 2, "the large batch went as several messages"
    assert all(len(m[3]) <= 1_000_000 for m in messages)
    rows = [r for r in points_rows(messages) if r[0] == str(workout)]
    assert sorted(rows) == sorted([(str(workout), 0, i) for i in range(12_000)] + [(str(workout), 1, 0)])


def test_topics_are_provisioned_as_configured_and_a_differing_one_is_named(server_factory, kafka_broker):
    """The events and points topics are created with the configured replication factor (3),
    `min.insync.replicas` (2), 90 days' retention and compaction after a week (they carry
    tombstones); an existing topic that differs gets a warning naming each difference, or stops
    the start with `on_topic_mismatch = "refuse"`. tansu keeps the settings it is given (it
    reports three replicas on its one broker) but enforces neither replication nor
    `min.insync.replicas`: those are Kafka's own to prove."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    server = server_factory(**kafka_env(kafka_broker)).start()
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    metadata = admin.list_topics(timeout=10)
    for topic in (EVENTS, POINTS):
        partitions = metadata.topics[topic].partitions
        assert len(partitions) == 3 and {len(p.replicas) for p in partitions.values()} == {3}, topic
        described = admin.describe_configs([ConfigResource("topic", topic)])
        configs = {k: v.value for k, v in next(iter(described.values())).result().items()}
        assert configs["min.insync.replicas"] == "2", configs
        assert configs["retention.ms"] == str(90 * 86_400_000), configs
        assert sorted(configs["cleanup.policy"].split(",")) == ["compact", "delete"], configs
        assert configs["min.compaction.lag.ms"] == str(7 * 86_400_000), configs
    server.stop()

    created = admin.create_topics([NewTopic("drifted.events", 3, 1, config={"retention.ms": str(7 * 86_400_000)})])
    next(iter(created.values())).result()
    drifted = kafka_env(kafka_broker, TRACKWIRE_KAFKA__EVENTS_TOPIC="drifted.events")
    try:
        server_factory(**drifted, TRACKWIRE_KAFKA__ON_TOPIC_MISMATCH="refuse").start()
        raise AssertionError("a topic that differs from the configuration must stop the start in refuse mode")
    except RuntimeError as refused:
        message = str(refused)
    assert "topic drifted.events has replication factor = 1 where the configuration asks for 3" in message, message
    assert "retention.ms = 604800000 where the configuration asks for 7776000000" in message, message
    warned = server_factory(**drifted).start()
    assert warned.post(twclient.encode_batch(twclient.parse_gpx(TRACE)[:10], uuid.uuid4(), 0)).status_code == 200
    warned.stop()
    log = warned.log_path.read_text()
    assert "kafka topic differs from the configuration" in log and "min.insync.replicas" in log, log[-3000:]
