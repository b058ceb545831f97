"""An independent Python client posts a real recorded trace; DuckDB finds every sample once."""
import uuid
from collections import Counter

import requests

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"


def test_real_trace_lands_in_the_lake_exactly_once(server_factory):
    points = twclient.parse_gpx(TRACE)
    assert len(points) == 988, "the trace SOURCES.md describes"
    server = server_factory().start()
    workout = uuid.uuid4()
    bodies = twclient.batches_of(points, 100, workout)
    for seq, body in enumerate(bodies):
        r = server.post(body)
        assert r.status_code == 200, r.text
        assert r.json() == {"workout_id": str(workout), "acked_seq": seq, "duplicate": False}
    # A retry of an acked batch is acked again and stored once.
    r = server.post(bodies[3])
    assert r.status_code == 200 and r.json()["duplicate"] is True

    summary = server.api("GET", f"/workouts/{workout}")
    assert summary.status_code == 200, summary.text
    server.stop()

    rows = twclient.read_points(server.data_dir / "lake")
    mine = [r for r in rows if r[0] == str(workout)]
    counts = Counter((r[1], r[2]) for r in mine)
    assert len(mine) == len(points), f"{len(mine)} rows for {len(points)} samples"
    assert max(counts.values()) == 1, "a sample appears twice"
    by_key = {(r[1], r[2]): r for r in mine}
    for i, p in enumerate(points):
        row = by_key[(i // 100, i % 100)]
        _, _, _, time_ms, lat, lon, hr, ele, date, hour = row
        assert time_ms == p.time_ms
        assert abs(lat - p.lat) < 1e-7 and abs(lon - p.lon) < 1e-7, (row, p)
        assert hr == p.hr
        assert abs(ele - p.ele) < 0.01
    # Hive partition columns agree with the sample time.
    import datetime as dt

    for row in mine[:50]:
        t = dt.datetime.fromtimestamp(row[3] / 1000, dt.timezone.utc)
        assert str(row[8]) == t.strftime("%Y-%m-%d") and int(row[9]) == t.hour

    # The summary survives a restart (embedded read store), and the workout is completed.
    server2 = server_factory(server.data_dir).start()
    body = server2.api("GET", f"/workouts/{workout}").json()
    assert body["status"] == "completed"
    assert body["samples"] == len(points)
    assert body["heart_rate_max_bpm"] == max(p.hr for p in points)
    assert 0 < body["distance_m"]
    listing = server2.api("GET", "/workouts?limit=1").json()
    assert listing["workouts"][0]["workout_id"] == str(workout)
    server2.stop()

    # Events: the seed's names, in order, in the embedded event log.
    import json

    events = [json.loads(line) for f in sorted((server.data_dir / "events").glob("*.jsonl")) for line in f.read_text().splitlines()]
    kinds = [e["type"] for e in events if e["workout_id"] == str(workout)]
    assert kinds[0] == "WorkoutStarted" and kinds[-1] == "WorkoutCompleted"
    assert kinds.count("WorkoutUpdated") == len(bodies)
    assert len({e["event_id"] for e in events}) == len(events)
