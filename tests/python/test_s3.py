"""The Parquet lake on a real S3 server (moto): every sample exactly once, read back by pyarrow;
and an S3 outage during ingest loses nothing acked and never shows a partial object."""
import time
import uuid
from collections import Counter

import pyarrow.parquet as pq
from pyarrow.fs import FileSelector
import requests

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"  # 988 samples


def test_the_lake_on_s3_holds_every_sample_once(server_factory, s3_server):
    server = server_factory(**s3_server.env("s3://lake/tw")).start()
    points = twclient.parse_gpx(TRACE)
    workout = uuid.uuid4()
    for body in twclient.batches_of(points, 100, workout):
        r = server.post(body)
        assert r.status_code == 200, r.text
    server.stop()  # drains: every lake file committed

    rows = [r for r in twclient.read_points_s3(s3_server, "lake/tw") if r["workout_id"] == str(workout)]
    assert len(rows) == len(points) == 988
    assert max(Counter((r["seq"], r["sample_index"]) for r in rows).values()) == 1
    first = next(r for r in rows if (r["seq"], r["sample_index"]) == (0, 0))
    assert abs(first["lat"] - points[0].lat) < 1e-7 and first["heart_rate_bpm"] == points[0].hr
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="lake", Prefix="tw/")["Contents"]]
    assert any(k.startswith("tw/points/date=") for k in keys) and any(k.startswith("tw/workouts/") for k in keys)
    assert not any((server.data_dir / "lake").glob("**/*.parquet")), "nothing written locally"


def test_an_s3_outage_loses_nothing_acked_and_never_shows_a_partial_object(server_factory, s3_server):
    env = s3_server.env("s3://lake/out") | {"TRACKWIRE_LAKE__MAX_FILE_AGE_SECS": "0.3"}
    server = server_factory(**env).start()
    points = twclient.parse_gpx(TRACE)
    workouts = [uuid.uuid4() for _ in range(3)]
    acked = Counter()

    def ingest(workout):
        for body in twclient.batches_of(points, 50, workout):
            r = server.post(body)
            assert r.status_code == 200, r.text
            acked[str(workout)] += 1

    ingest(workouts[0])
    time.sleep(1.0)  # the first files are committed
    s3_server.pause()  # the storage goes away; ingest keeps acking into the log
    ingest(workouts[1])
    deadline = time.time() + 30
    lake = None
    while time.time() < deadline:
        health = requests.get(server.url + "/healthcheck", timeout=5).json()
        lake = next(s for s in health["sinks"] if s["name"] == "points")
        if lake["errors"] > 0 and lake["lag_records"] > 0:
            break
        time.sleep(0.2)
    assert lake["errors"] > 0 and lake["last_error"], f"the outage shows on /healthcheck: {lake}"
    assert lake["lag_records"] > 0
    s3_server.resume()
    ingest(workouts[2])
    server.stop()

    assert all(n == 20 for n in acked.values()) and len(acked) == 3
    rows = twclient.read_points_s3(s3_server, "lake/out")
    counts = Counter((r["workout_id"], r["seq"], r["sample_index"]) for r in rows)
    assert max(counts.values()) == 1, "a sample was written twice"
    for w in workouts:
        assert sum(1 for k in counts if k[0] == str(w)) == len(points), f"workout {w} incomplete"
    # Every Parquet object is whole: readable to its last row group (the Delta log's JSON commits
    # are written with put-if-absent, whole or not at all).
    fs = s3_server.filesystem()
    for info in fs.get_file_info(FileSelector("lake/out", recursive=True)):
        if info.is_file and info.path.endswith(".parquet"):
            with fs.open_input_file(info.path) as f:
                assert pq.ParquetFile(f).metadata.num_rows > 0, info.path
