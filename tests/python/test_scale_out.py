"""Scale-out on one machine: a gateway and two pipeline workers as separate processes, with a
real Kafka-protocol broker (tansu) as the durable log, the lake on an S3 server (moto) and the
read store in PostgreSQL. Workouts arrive over HTTP and QUIC (aioquic, an independent stack);
one worker is killed (SIGKILL) mid-run and the other takes over its partitions. Afterwards the
lake (read with pyarrow) holds every acked sample exactly once (PostgreSQL is reached over TLS), the read store (read with
psycopg) has every workout completed with every sample, and every workout's events on Kafka are
complete and in order."""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter, defaultdict

import psycopg
import requests

import twclient
from test_quic import _stream_with_aioquic

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"  # 988 samples
EVENTS = "trackwire.workout-events.v2"
PARTITIONS = 4
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def iso_ms(unix_ms: int) -> str:
    """The API's instant format: ISO 8601 UTC with milliseconds."""
    import datetime

    t = datetime.datetime.fromtimestamp(unix_ms // 1000, datetime.timezone.utc) + datetime.timedelta(milliseconds=unix_ms % 1000)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(what, check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def raw_partition(workout: uuid.UUID, partitions: int = PARTITIONS) -> int:
    """The gateway's partition choice (ingest/src/log/kafka.rs `partition_of`), re-implemented."""
    tail = int.from_bytes(workout.bytes[12:16], "big")
    return (((tail * 0x9E3779B97F4A7C15) % 2**64) >> 32) % partitions


def two_workouts_per_partition() -> list[uuid.UUID]:
    chosen: dict[int, list[uuid.UUID]] = defaultdict(list)
    while sum(len(v) for v in chosen.values()) < 2 * PARTITIONS:
        w = uuid.uuid4()
        if len(chosen[raw_partition(w)]) < 2:
            chosen[raw_partition(w)].append(w)
    return [w for p in sorted(chosen) for w in chosen[p]]


def scale_out_env(kafka_broker, postgres_db, raw_partitions: int = PARTITIONS, s3_server=None, lake: str = "") -> dict:
    """What every role of one test deployment is given: the broker, the raw topic's partitions,
    the shared store (over TLS, verified against the test CA, when the harness has one), short
    leases, and the lake on S3 when the test reads it."""
    env = {
        "TRACKWIRE_KAFKA__BROKERS": kafka_broker.bootstrap,
        "TRACKWIRE_KAFKA__RAW_PARTITIONS": raw_partitions,
        "TRACKWIRE_KAFKA__PARTITIONS": 2,
        "TRACKWIRE_STORE__URL": postgres_db,
        "TRACKWIRE_CLUSTER__LEASE_SECS": 3,
    }
    if os.environ.get("TRACKWIRE_TEST_POSTGRES_CA"):
        env["TRACKWIRE_STORE__CA_FILE"] = os.environ["TRACKWIRE_TEST_POSTGRES_CA"]
    if s3_server is not None:
        env.update(s3_server.env(lake))
    return env


def partitions_of(worker) -> list[int]:
    body = requests.get(worker.url + "/healthcheck", timeout=5).json()
    return sorted(p["partition"] for p in body["partitions"])


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(server_factory, kafka_broker, s3_server, postgres_db, tmp_path):
    # Every PostgreSQL connection (store and leases) over TLS, verified against the test CA.
    common = scale_out_env(kafka_broker, postgres_db, s3_server=s3_server, lake="s3://lake/scale")
    gateway = server_factory(tmp_path / "gateway", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    workers = [
        server_factory(tmp_path / f"worker{i}", TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS=f"{i}/2", **common).start()
        for i in range(2)
    ]
    wait_for("each worker to run its home partitions", lambda: partitions_of(workers[0]) == [0, 2] and partitions_of(workers[1]) == [1, 3])
    # The gateway serves ingest only; the API is another role, on the shared store.
    assert requests.get(gateway.url + "/api/v1/workouts", timeout=5).status_code == 404
    api = server_factory(tmp_path / "api", TRACKWIRE_CLUSTER__ROLE="api", **common).start()
    assert requests.post(api.url + "/v1/ingest", data=b"x", timeout=5).status_code == 404
    # The athlete's profile, set through the API, reaches the workers through PostgreSQL.
    profile = {"weight_kg": 70.0, "birth_year": 1990, "sex": "male", "hr_max_bpm": 190.0, "hr_rest_bpm": 50.0}
    assert api.api("PUT", "/users/me/profile", json=profile).status_code == 200
    for worker in workers:  # each refreshes profiles every lease round
        wait_for("the workers to read the profile", lambda: requests.get(worker.url + "/healthcheck", timeout=5).json()["athlete_profiles"] == 1)

    points = twclient.parse_gpx(TRACE)
    workouts = two_workouts_per_partition()
    bodies = {w: twclient.batches_of(points, 50, w) for w in workouts}  # 20 batches each
    over_quic = set(workouts[::3])  # some of every worker's partitions
    half = len(bodies[workouts[0]]) // 2

    def send(first: int, last: int):
        for w in workouts:
            chunk = bodies[w][first:last]
            if w in over_quic:
                # One QUIC stream per part; a batch is acked only after the broker has it.
                cafile = str(gateway.data_dir / "quic-cert.pem")
                _, acks = asyncio.run(_stream_with_aioquic(gateway.quic_port, cafile, twclient.TOKEN.encode(), chunk))
                assert len(acks) == len(chunk)
            else:
                for body in chunk:
                    # The traced workout's first batch carries a W3C traceparent.
                    traced = w == workouts[1] and body == bodies[w][0]
                    r = gateway.post(body, headers={"traceparent": TRACEPARENT} if traced else None)
                    assert r.status_code == 200, r.text

    send(0, half)
    # Let the first worker commit lake files and read-store rows for its partitions, so that the
    # takeover has to skip what is already there; then kill it mid-run.
    def committed(worker, sink):
        partitions = requests.get(worker.url + "/healthcheck", timeout=5).json()["partitions"]
        return [s["checkpoint_lsn"] for p in partitions for s in p["sinks"] if s["name"] == sink]
    wait_for("worker 0 to commit lake files", lambda: all(c > 0 for c in committed(workers[0], "points")))
    wait_for("worker 0 to commit the read store", lambda: all(c > 0 for c in committed(workers[0], "read_store")))
    workers[0].kill()
    send(half, len(bodies[workouts[0]]))
    # A retry of an acked batch (the device lost the ack) through another gateway: the raw topic
    # holds it twice, and the worker drops the second copy.
    other_gateway = server_factory(tmp_path / "gateway2", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    assert other_gateway.post(bodies[workouts[4]][0]).status_code == 200
    assert gateway.post(bodies[workouts[4]][0]).json()["acked_seq"] == 0, "the same gateway answers from memory"

    wait_for("worker 1 to take over every partition", lambda: partitions_of(workers[1]) == [0, 1, 2, 3], timeout=60)
    dropped = lambda: sum(p["duplicates_dropped"] for p in requests.get(workers[1].url + "/healthcheck", timeout=5).json()["partitions"])
    wait_for("the worker to drop the duplicate", lambda: dropped() == 1)

    # The read store: every workout completed, with every sample.
    def all_completed():
        with psycopg.connect(postgres_db, autocommit=True) as db:
            rows = db.execute("SELECT summary FROM workout_summaries").fetchall()
        done = {r[0]["workout_id"]: r[0] for r in rows if r[0]["status"] == "completed"}
        return done if len(done) == len(workouts) else None
    summaries = wait_for("every workout completed in the read store", all_completed)
    for w in workouts:
        assert summaries[str(w)]["samples"] == len(points) == 988, summaries[str(w)]
        # Enriched with the profile: Edwards TRIMP needs HRmax, calories the weight.
        assert summaries[str(w)]["trimp_edwards"] is not None and summaries[str(w)]["calories_kcal"] is not None
    # The API replica serves them from the store.
    listed = api.api("GET", "/workouts", params={"limit": 50}).json()["workouts"]
    assert {w["workout_id"] for w in listed} == {str(w) for w in workouts}

    # The lake: every acked sample exactly once (files commit by age; wait for the last ones).
    def lake_complete():
        rows = [r for r in twclient.read_points_s3(s3_server, "lake/scale")]
        return rows if len(rows) >= len(workouts) * len(points) else None
    rows = wait_for("every sample in the lake", lake_complete)
    counts = Counter((r["workout_id"], r["seq"], r["sample_index"]) for r in rows)
    assert max(counts.values()) == 1, [k for k, c in counts.items() if c > 1][:5]
    assert len(counts) == len(workouts) * len(points)
    assert {r["workout_id"] for r in rows} == {str(w) for w in workouts}
    # Each workout's batches sat in the partition the gateway's hash names (checked on the topic).
    # (Command records, such as the profile's event, are keyed otherwise and marked by a header.)
    for partition, _, key, _, headers in kafka_broker.read_topic("trackwire.raw.v1", idle_s=1.0):
        if "trackwire-command" not in headers:
            assert raw_partition(uuid.UUID(bytes=key)) == partition

    # Events on Kafka: per workout, its distinct events in topic order are complete and in order.
    # (Kafka delivery is at least once across a takeover: a consumer dedupes by event_id.)
    by_workout = defaultdict(list)
    for _, offset, key, value, headers in sorted(kafka_broker.read_topic(EVENTS), key=lambda m: (m[0], m[1])):
        body = json.loads(value)
        twclient.validate_event(body)
        body["trace-id"] = headers.get("trace-id", b"").decode()
        by_workout[key.decode()].append(body)
    # The trace id of the ingest request travelled gateway -> raw topic -> worker -> Kafka sink.
    started = [b for b in by_workout[str(workouts[1])] if b["type"] == "WorkoutStarted"]
    assert started and {b["trace-id"] for b in started} == {TRACE_ID}, started
    for w in workouts:
        seen, distinct = set(), []
        for body in by_workout[str(w)]:
            if body["event_id"] not in seen:
                seen.add(body["event_id"])
                distinct.append(body)
        kinds = [b["type"] for b in distinct]
        assert kinds[0] == "WorkoutStarted" and kinds[-1] == "WorkoutCompleted", kinds
        assert set(kinds[1:-1]) <= {"WorkoutUpdated"}, kinds
        times = [b["timestamp"] for b in distinct]
        assert times == sorted(times), "events in order"
    # The API replica's events travel through the raw topic to a worker's Kafka sink: the profile
    # set above (keyed by the user), and a tag, after the workout's own events (its key).
    metrics = [b for b in by_workout["py-user-1"] if b["type"] == "UserMetricsUpdated"]
    assert metrics and metrics[0]["data"]["weight_kg"] == 70.0, by_workout.get("py-user-1")
    assert api.api("POST", f"/workouts/{workouts[0]}/tags", json={"tag": "race"}).json()["tags"] == ["race"]

    def tagged():
        for _, _, key, value, _ in kafka_broker.read_topic(EVENTS, idle_s=0.5):
            body = json.loads(value) if value else {}
            if key == str(workouts[0]).encode() and body.get("type") == "WorkoutTagAdded":
                twclient.validate_event(body)
                return body
        return None
    assert wait_for("the tag's event on Kafka", tagged, timeout=60)["data"]["tag"] == "race"

    # The worker's metric families are documented (the autoscaler reads the lag).
    import re
    from pathlib import Path
    exposed = set(re.findall(r"^(trackwire_[a-z_]+)[{ ]", requests.get(workers[1].url + "/metrics", timeout=5).text, re.M))
    documented = set(re.findall(r"`([a-z_]+)`", (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()))
    assert "trackwire_worker_consumer_lag_records" in exposed and exposed <= documented, sorted(exposed - documented)

    # The survivor stops cleanly, releasing its leases.
    workers[1].stop()
    gateway.stop()
    other_gateway.stop()
    api.stop()


def test_a_worker_that_cannot_reach_the_broker_gives_its_partitions_up_and_stays_up(server_factory, postgres_db, tmp_path):
    dead = f"127.0.0.1:{twclient.free_port()}"  # nothing listens there
    worker = server_factory(
        tmp_path / "worker", TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS="0/1",
        TRACKWIRE_KAFKA__BROKERS=dead, TRACKWIRE_KAFKA__RAW_PARTITIONS=2, TRACKWIRE_STORE__URL=postgres_db,
        TRACKWIRE_CLUSTER__LEASE_SECS=3,
    ).start()
    # Each round it claims the partitions, fails to start them, and releases their leases.
    wait_for("a failed start", lambda: "partition not started, lease released" in worker.log_path.read_text(), timeout=60)
    wait_for("a second round's attempt", lambda: worker.log_path.read_text().count("partition not started") >= 4, timeout=60)
    assert worker.proc.poll() is None, "the worker keeps running (and retrying)"
    assert requests.get(worker.url + "/healthcheck", timeout=5).status_code == 200
    worker.stop()


def read_or_none(read):
    """`(rows,)`, or None when the read failed (wait_for retries it)."""
    try:
        return (read(),)
    except OSError:
        return None


def one_workout_per_partition() -> list[uuid.UUID]:
    chosen: dict[int, uuid.UUID] = {}
    while len(chosen) < PARTITIONS:
        w = uuid.uuid4()
        chosen.setdefault(raw_partition(w), w)
    return [chosen[p] for p in sorted(chosen)]


def test_an_erasure_and_retention_reach_every_partition_and_a_killed_worker_brings_nothing_back(
    server_factory, kafka_broker, s3_server, postgres_db, tmp_path
):
    common = scale_out_env(kafka_broker, postgres_db, s3_server=s3_server, lake="s3://lake/erase")
    gateway = server_factory(tmp_path / "gateway", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    workers = [
        server_factory(tmp_path / f"worker{i}", TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS=f"{i}/2", **common).start()
        for i in range(2)
    ]
    apis = [server_factory(tmp_path / f"api{i}", TRACKWIRE_CLUSTER__ROLE="api", **common).start() for i in range(2)]
    wait_for("each worker to run its home partitions", lambda: partitions_of(workers[0]) == [0, 2] and partitions_of(workers[1]) == [1, 3])

    # Two users with a workout in every partition; one of them is erased.
    points = twclient.parse_gpx(TRACE)
    erased, kept = "py-erased-1", "py-kept-1"
    workouts = {erased: one_workout_per_partition(), kept: one_workout_per_partition()}
    for user, ids in workouts.items():
        for w in ids:
            for body in twclient.batches_of(points, 200, w, user_id=user):
                assert gateway.post(body).status_code == 200
    every = [str(w) for ids in workouts.values() for w in ids]

    def summaries():
        with psycopg.connect(postgres_db, autocommit=True) as db:
            return {r[0]["workout_id"]: r[0] for r in db.execute("SELECT summary FROM workout_summaries").fetchall()}
    wait_for("every workout completed", lambda: all(summaries().get(w, {}).get("status") == "completed" for w in every))

    def lake_points():
        # A file an erasure or a retention cut rewrites can vanish between listing and reading.
        return wait_for("a consistent read of the lake", lambda: read_or_none(lambda: twclient.read_points_s3(s3_server, "lake/erase")))[0]

    def lake_rows():
        return Counter(r["workout_id"] for r in lake_points())
    wait_for("every sample in the lake", lambda: all(lake_rows()[w] == len(points) for w in every))

    def kafka_caught_up(worker):
        body = requests.get(worker.url + "/healthcheck", timeout=5).json()
        return all(
            s["checkpoint_lsn"] >= p["end_offset"] > 0 for p in body["partitions"] for s in p["sinks"] if s["name"] == "kafka"
        )
    wait_for("worker 0 to deliver everything to Kafka", lambda: kafka_caught_up(workers[0]))

    # A worker dies; the erasure is asked of one API replica while its partitions have no owner.
    workers[0].kill()
    r = apis[0].api("DELETE", f"/users/{erased}", admin=True)
    assert r.status_code in (200, 202), r.text
    if r.status_code == 202:
        assert r.headers["Location"] == f"/api/v1/users/{erased}/erasure"
        assert r.json()["partitions"] == PARTITIONS
    # Another replica tells how far it got; complete once the survivor has taken the dead
    # worker's partitions over and carried the erasure out in each.
    status = lambda: apis[1].api("GET", f"/users/{erased}/erasure", admin=True).json()
    wait_for("the erasure to complete on every partition", lambda: status()["state"] == "complete", timeout=90)
    assert status()["partitions_done"] == PARTITIONS

    def erased_everywhere():
        stored = summaries()
        lake = lake_rows()
        gone = all(str(w) not in stored and lake[str(w)] == 0 for w in workouts[erased])
        intact = all(stored[str(w)]["samples"] == len(points) and lake[str(w)] == len(points) for w in workouts[kept])
        return gone and intact
    assert erased_everywhere()
    for api in apis:
        assert api.api("GET", "/workouts", user=erased).json()["workouts"] == []
        assert len(api.api("GET", "/workouts", user=kept).json()["workouts"]) == PARTITIONS
    # Consumers are told, on the events topic, by every partition that held the user.
    told = [json.loads(v) for _, _, k, v, _ in kafka_broker.read_topic(EVENTS) if k == erased.encode()]
    for body in told:
        twclient.validate_event(body)
    erased_ids = {w for body in told if body["type"] == "UserErased" for w in body["data"]["workout_ids"]}
    assert erased_ids == {str(w) for w in workouts[erased]}, told
    # The survivor found the dead worker's Kafka position in the shared store: it did not send
    # those partitions' events again.
    kept_events = Counter(
        json.loads(v)["event_id"] for _, _, k, v, _ in kafka_broker.read_topic(EVENTS) if k.decode() in map(str, workouts[kept])
    )
    assert kept_events and max(kept_events.values()) == 1, [e for e, n in kept_events.items() if n > 1][:5]

    # The dead worker comes back, takes its partitions back and replays them from their first
    # record: nothing of the erased user returns.
    workers[0] = server_factory(workers[0].data_dir, TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS="0/2", **common).start()
    wait_for("the restarted worker to run its home partitions", lambda: partitions_of(workers[0]) == [0, 2], timeout=60)

    def replayed():
        body = requests.get(workers[0].url + "/healthcheck", timeout=5).json()
        return all(p["delivered_lsn"] >= p["end_offset"] > 0 for p in body["partitions"])
    wait_for("the restarted worker to replay its partitions", replayed)
    time.sleep(2)  # a flush interval and a lake file age, several times over
    assert erased_everywhere()

    # Coordinate retention runs in scale-out and counts from storage: an API replica that keeps
    # positions one day leaves these years-old traces, stored minutes ago, as they are...
    retaining = server_factory(tmp_path / "api-retention", TRACKWIRE_CLUSTER__ROLE="api", TRACKWIRE_PRIVACY__COORDINATE_RETENTION_DAYS="1", **common).start()
    time.sleep(2)  # its first background pass, placed in every partition
    assert all(r["lat"] is not None for r in lake_points() if r["workout_id"] in map(str, workouts[kept]))
    # ...and an operator's cut at this instant places the cut in every partition, where the
    # workers drop their positions.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1)
    r = retaining.api("POST", "/admin/retention", admin=True, params={"before": now})
    assert r.status_code == 200, r.text
    def positions_dropped():
        rows = [r for r in lake_points() if r["workout_id"] in every]
        return rows and all(r["lat"] is None and r["lon"] is None for r in rows) and rows
    rows = wait_for("positions dropped from the lake by every partition", positions_dropped, timeout=90)
    assert Counter(r["workout_id"] for r in rows) == {str(w): len(points) for w in workouts[kept]}, "totals and samples stay"
    def read_store_positions_dropped():
        streams = retaining.api("GET", f"/workouts/{workouts[kept][0]}/streams", user=kept).json()
        return streams["time"]["data"] and all(p is None for p in streams.get("latlng", {}).get("data", []))
    wait_for("positions dropped from the read store", read_store_positions_dropped)

    # The erased user records again: the same recordings, sent after the erasure (through a
    # gateway that never acked them), are new data on the restarted worker's partition and on the
    # survivor's, not copies of what was erased.
    second_gateway = server_factory(tmp_path / "gateway2", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    again = workouts[erased][:2]
    for w in again:
        for body in twclient.batches_of(points, 200, w, user_id=erased):
            assert second_gateway.post(body).status_code == 200
    wait_for("the erased user's recordings stored again, whole",
             lambda: all(summaries().get(str(w), {}).get("samples") == len(points) for w in again), timeout=60)

    # A file uploaded, deleted and uploaded again is the workout again, also when another API
    # replica took the deletion: the uploading replica's memory of acked batches does not answer
    # the new upload `duplicate`, the worker forgets its dedup at the deletion.
    uploader = "py-uploads-1"
    def upload_trace():
        r = apis[0].api("POST", "/uploads", user=uploader, files={"file": (TRACE.name, TRACE.read_bytes())})
        assert r.status_code == 202, r.text
        status = lambda: apis[0].api("GET", f"/uploads/{r.json()['id']}", user=uploader).json()
        return wait_for("the upload processed", lambda: status()["status"] != "processing" and status())
    first = upload_trace()
    assert first["status"] == "ready", first
    stored_whole = lambda: summaries().get(first["workout_id"], {}).get("samples") == len(points)
    wait_for("the uploaded workout stored", stored_whole)
    assert apis[1].api("DELETE", f"/workouts/{first['workout_id']}", user=uploader).status_code in (202, 204)
    wait_for("the uploaded workout deleted", lambda: first["workout_id"] not in summaries())
    again = upload_trace()
    assert (again["status"], again["workout_id"]) == ("ready", first["workout_id"]), again
    wait_for("the uploaded workout stored again, whole", stored_whole)

    for server in [*workers, *apis, retaining, gateway, second_gateway]:
        server.stop()


def test_api_replicas_share_the_accounts_and_gateways_follow_the_tokens_they_issue(server_factory, kafka_broker, postgres_db, tmp_path):
    common = scale_out_env(kafka_broker, postgres_db)
    gateway = server_factory(tmp_path / "gateway", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    apis = [server_factory(tmp_path / f"api{i}", TRACKWIRE_CLUSTER__ROLE="api", **common).start() for i in range(2)]

    # What one replica stores, the other serves.
    profile = {"weight_kg": 61.5, "birth_year": 1991, "sex": "female", "hr_max_bpm": 188.0, "hr_rest_bpm": 48.0}
    assert apis[0].api("PUT", "/users/me/profile", json=profile).status_code == 200
    assert apis[1].api("GET", "/users/me/profile").json() == profile
    created = apis[1].api("POST", "/users/me/gear", json={"name": "trail shoes", "kind": "shoes"})
    assert created.status_code in (200, 201), created.text
    assert [g["name"] for g in apis[0].api("GET", "/users/me/gear").json()["gear"]] == ["trail shoes"]

    # A device token issued by one replica is accepted by the gateway within seconds...
    issued = apis[0].api("POST", "/users/me/device-tokens", json={"device_id": "py-device-1"}).json()
    points = twclient.parse_gpx(TRACE)[:20]
    workout = uuid.uuid4()
    batches = [twclient.encode_batch(points[i : i + 5], workout, i // 5) for i in range(0, 20, 5)]
    wait_for("the gateway to accept the issued token", lambda: gateway.post(batches[0], token=issued["token"]).status_code == 200, timeout=15)
    # ...for its own user only,
    other_user = twclient.encode_batch(points[:5], uuid.uuid4(), 0, user_id="someone-else")
    assert gateway.post(other_user, token=issued["token"]).status_code == 403
    # The workout it started belongs to its user and device on every gateway (the binding is in
    # the shared store): another device, even with the development token, is refused.
    second_gateway = server_factory(tmp_path / "gateway2", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    intruding = twclient.encode_batch(points[5:10], workout, 1, device_id="py-device-2", user_id="someone-else")
    refused = second_gateway.post(intruding)
    assert refused.status_code == 403 and refused.json()["error"] == "workout_owner_mismatch", refused.text
    # and refused within seconds once the other replica revoked it.
    assert apis[1].api("DELETE", f"/users/me/device-tokens/{issued['id']}").status_code in (200, 204)
    wait_for("the gateway to refuse the revoked token", lambda: gateway.post(batches[1], token=issued["token"]).status_code == 401, timeout=15)

    for server in [gateway, second_gateway, *apis]:
        server.stop()


def test_an_api_replica_shows_a_workout_in_progress_as_it_goes(server_factory, kafka_broker, postgres_db, tmp_path):
    common = scale_out_env(kafka_broker, postgres_db, raw_partitions=2)
    gateway = server_factory(tmp_path / "gateway", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    worker = server_factory(tmp_path / "worker", TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS="0/1", **common).start()
    api = server_factory(tmp_path / "api", TRACKWIRE_CLUSTER__ROLE="api", **common).start()
    wait_for("the worker to run both partitions", lambda: partitions_of(worker) == [0, 1])

    points = twclient.parse_gpx(TRACE)[:300]
    workout = uuid.uuid4()
    batches = twclient.batches_of(points, 50, workout)
    for k, body in enumerate(batches[:-1]):
        assert gateway.post(body).status_code == 200
        sent_through = points[50 * k + 49].time_ms

        def caught_up():
            r = api.api("GET", f"/workouts/{workout}/live")
            return r.status_code == 200 and (r.json().get("last_sample") or {}).get("time") == iso_ms(sent_through) and r.json()
        live = wait_for(f"the live view to show batch {k}", caught_up, timeout=30)
        assert live["in_progress"] is True and live["status"] == "active", live
    assert gateway.post(batches[-1]).status_code == 200
    done = wait_for("the workout to end", lambda: (r := api.api("GET", f"/workouts/{workout}/live").json())["status"] == "completed" and r)
    assert done["in_progress"] is False
    for server in [worker, api, gateway]:
        server.stop()


def test_a_silent_workout_is_completed_by_the_worker_holding_its_partition(server_factory, kafka_broker, postgres_db, tmp_path):
    """The idle timeout in scale-out: the worker that holds the workout's partition puts the
    server's record into the raw topic (where a takeover would read the same decision), and the
    workout completes with `end_reason: idle_timeout`."""
    common = scale_out_env(kafka_broker, postgres_db, raw_partitions=2)
    gateway = server_factory(tmp_path / "gateway", TRACKWIRE_CLUSTER__ROLE="gateway", **common).start()
    worker = server_factory(
        tmp_path / "worker", TRACKWIRE_CLUSTER__ROLE="pipeline", TRACKWIRE_CLUSTER__PARTITIONS="0/1",
        TRACKWIRE_PIPELINE__IDLE_TIMEOUT_SECS=2, **common,
    ).start()
    api = server_factory(tmp_path / "api", TRACKWIRE_CLUSTER__ROLE="api", **common).start()
    wait_for("the worker to run both partitions", lambda: partitions_of(worker) == [0, 1])

    points = twclient.parse_gpx(TRACE)[:200]
    workout = uuid.uuid4()
    for seq in range(4):  # no Complete: the watch died
        chunk = points[50 * seq : 50 * seq + 50]
        events = [(chunk[0].time_ms, twclient.ControlKind.Start)] if seq == 0 else []
        assert gateway.post(twclient.encode_batch(chunk, workout, seq, events=events)).status_code == 200

    def completed():
        r = api.api("GET", f"/workouts/{workout}")
        return r.status_code == 200 and r.json()["status"] == "completed" and r.json()
    done = wait_for("the idle timeout to complete the workout", completed, timeout=60)
    assert done["end_reason"] == "idle_timeout" and done["end_time"] == iso_ms(points[199].time_ms), done
    assert (done["batches"], done["last_seq"], done["samples"]) == (4, 3, 200), done
    metrics = requests.get(worker.url + "/metrics", timeout=5).text
    assert 'reason="idle_timeout"} 1' in metrics, metrics
    for server in [worker, api, gateway]:
        server.stop()
