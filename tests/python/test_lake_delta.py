"""The lake as the ML team reads it: two Delta tables, read by clients that share no code with
Trackwire (delta-rs through `deltalake`, polars, pyarrow), with the acked rows exactly once, typed
partition columns, join keys, history and time travel; compaction keeps partitions to a few files;
after an erasure no version a reader can still open holds the user's rows."""
import time
import uuid
from collections import Counter, defaultdict

import polars as pl
import pyarrow as pa

import twclient

TRACE = twclient.TRACES / "georust-gpx__garmin-activity.gpx"


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def rows_of(lake, table, version=None, attempts=5):
    """A version's rows. A reader racing vacuum can find a file of the version it opened already
    deleted (what `lake.vacuum_retention_secs` is for): it reads the newest version again."""
    for attempt in range(attempts):
        delta = twclient.delta_table(lake, table, version=version)
        if delta is None:
            return None
        try:
            return delta.to_pyarrow_table()
        except FileNotFoundError:
            if attempt == attempts - 1 or version is not None:
                raise
            time.sleep(0.1)


def active_files_per_partition(lake, table="points"):
    delta = twclient.delta_table(lake, table)
    per_partition = Counter()
    for action in pa.table(delta.get_add_actions(flatten=True)).to_pylist():
        per_partition[(str(action["partition.date"]), action.get("partition.hour"))] += 1
    return per_partition


def test_delta_tables_for_independent_readers(server_factory):
    points = twclient.parse_gpx(TRACE)
    server = server_factory(
        # Commit often, so this short test makes many small files, compacts and vacuums them.
        TRACKWIRE_LAKE__MAX_FILE_AGE_SECS="0.2",
        TRACKWIRE_LAKE__COMPACT_ABOVE_FILES="3",
        TRACKWIRE_LAKE__VACUUM_RETENTION_SECS="20",
    ).start()
    lake = server.data_dir / "lake"
    workout = uuid.uuid4()
    bodies = twclient.batches_of(points, 40, workout)
    for body in bodies:
        assert server.post(body).status_code == 200
        time.sleep(0.25)

    # Every acked sample once, through delta-rs.
    table = wait_for("every sample in the points table", lambda: (t := rows_of(lake, "points")) is not None and t.num_rows == len(points) and t)
    keys = Counter(zip(table.column("seq").to_pylist(), table.column("sample_index").to_pylist()))
    assert len(keys) == len(points) and max(keys.values()) == 1
    # Partition columns typed by the table's schema, and the join keys on every row.
    schema = table.schema
    assert schema.field("date").type == pa.date32() and schema.field("hour").type == pa.int32(), schema
    assert set(table.column("user_id").to_pylist()) == {twclient.DEFAULT_USER}
    assert set(table.column("sport").to_pylist()) == {"running"}

    # polars reads the same table (through delta-rs), with the same types.
    frame = pl.read_delta(str(lake / "points"))
    assert frame.height == len(points)
    assert frame.schema["date"] == pl.Date and frame.schema["hour"] == pl.Int32
    assert frame.filter(pl.col("workout_id") == str(workout)).height == len(points)

    # The finished workout: zones, splits and the profile the calories used.
    workouts = wait_for("the workout row", lambda: (t := rows_of(lake, "workouts")) is not None and t.num_rows == 1 and t)
    row = workouts.to_pylist()[0]
    assert row["workout_id"] == str(workout) and row["user_id"] == twclient.DEFAULT_USER
    assert isinstance(row["date"], __import__("datetime").date)
    assert len(row["splits"]) >= 1 and row["splits"][0]["km"] == 1, row["splits"]
    for column in ("hr_zone_1_s", "profile_weight_kg", "profile_male"):
        assert column in workouts.schema.names

    # History: one commit per flush that wrote rows, each carrying Trackwire's log position;
    # time travel to an early version sees fewer rows.
    delta = twclient.delta_table(lake, "points")
    history = delta.history()
    writes = [h for h in history if h["operation"] == "STREAMING UPDATE"]
    assert len(writes) >= 3, [h["operation"] for h in history]
    early = rows_of(lake, "points", version=1)
    assert 0 < early.num_rows < len(points)

    # Compaction: no partition keeps more than 3 files, and the rows are unchanged.
    wait_for("compaction to ≤ 3 files per partition", lambda: max(active_files_per_partition(lake).values()) <= 3)
    assert any(h["operation"] == "OPTIMIZE" for h in twclient.delta_table(lake, "points").history())
    assert rows_of(lake, "points").num_rows == len(points)

    # Vacuum: the files compaction replaced are deleted once the retention has passed.
    def stored_files_are_the_active_ones():
        on_disk = {str(p.relative_to(lake / "points")) for p in (lake / "points").rglob("*.parquet") if "_delta_log" not in str(p)}
        active = {a["path"] for a in pa.table(twclient.delta_table(lake, "points").get_add_actions(flatten=True)).to_pylist()}
        return on_disk == active

    wait_for("vacuum of the replaced files", stored_files_are_the_active_ones, timeout=90)

    # Erasure: gone from the newest version, and from every version a reader can still open.
    r = server.api("DELETE", f"/users/{twclient.DEFAULT_USER}")
    assert r.status_code == 200, r.text
    wait_for("the erased rows to leave the table", lambda: rows_of(lake, "points").num_rows == 0)
    latest = twclient.delta_table(lake, "points").version()
    readable = 0
    for version in range(latest + 1):
        try:
            rows = rows_of(lake, "points", version=version)
        except Exception:  # a version whose files vacuum deleted can no longer be read
            continue
        readable += 1
        assert str(workout) not in set(rows.column("workout_id").to_pylist()), f"version {version} still holds the rows"
    assert readable >= 1
    for table_name in ("points", "workouts"):
        stored = [p for p in (lake / table_name).rglob("*.parquet") if "_delta_log" not in str(p)]
        for path in stored:
            import pyarrow.parquet as pq

            assert str(workout) not in set(pq.read_table(path, columns=["workout_id"]).column("workout_id").to_pylist()), path


def test_a_busy_hour_settles_into_a_few_large_files(server_factory):
    """Files that reached the target size stay apart while their hour is live (compaction merges
    only small ones); once no commit has touched the hour for `lake.settled_after_secs`, the
    settler merges them into files of `lake.settled_target_file_bytes`, rows unchanged."""
    points = twclient.parse_gpx(TRACE)
    server = server_factory(
        # Every commit's file reaches this tiny target: a busy hour in miniature.
        TRACKWIRE_LAKE__TARGET_FILE_BYTES="1000",
        TRACKWIRE_LAKE__MAX_FILE_AGE_SECS="0.2",
        TRACKWIRE_LAKE__SETTLED_AFTER_SECS="5",
    ).start()
    lake = server.data_dir / "lake"
    for body in twclient.batches_of(points, 40, uuid.uuid4()):
        assert server.post(body).status_code == 200
        time.sleep(0.25)
    wait_for("every sample in the points table", lambda: (t := rows_of(lake, "points")) is not None and t.num_rows == len(points))
    busiest = max(active_files_per_partition(lake).values())
    assert busiest > 3, f"the upload should leave a partition with many files, not {busiest}"

    wait_for("the settled hours merged to ≤ 3 files", lambda: max(active_files_per_partition(lake).values()) <= 3)
    table = rows_of(lake, "points")
    keys = Counter(zip(table.column("seq").to_pylist(), table.column("sample_index").to_pylist()))
    assert table.num_rows == len(points) and len(keys) == len(points), "every sample exactly once"
    assert any(h["operation"] == "OPTIMIZE" for h in twclient.delta_table(lake, "points").history())
