"""The API on the PostgreSQL read store (`--store-url`): a real server writes it, psycopg reads
the rows on its own, and a second server with an empty data directory serves the same workout
from PostgreSQL alone (the store is shared, not the process's)."""
from __future__ import annotations

import time

import psycopg

import twclient
from test_api import RUN_FIT, upload, wait_upload, wait_workout


def test_the_api_serves_workouts_from_postgresql(server_factory, postgres_db, tmp_path):
    server = server_factory(tmp_path / "first", TRACKWIRE_STORE__URL=postgres_db).start()
    done = wait_upload(server, upload(server, RUN_FIT)["id"])
    assert done["status"] == "ready", done
    workout_id = done["workout_id"]
    wait_workout(server, workout_id)

    with psycopg.connect(postgres_db, autocommit=True) as db:
        # The API may answer from the pipeline's memory before the sink's next commit.
        deadline = time.time() + 30
        while (row := db.execute(
            "SELECT user_id, sport, summary FROM workout_summaries WHERE workout_id = %s AND summary->>'status' = 'completed'",
            (bytes.fromhex(workout_id.replace("-", "")),),
        ).fetchone()) is None and time.time() < deadline:
            time.sleep(0.1)
        assert row is not None, "the summary is a row of workout_summaries"
        served = server.api("GET", f"/workouts/{workout_id}").json()
        streams = server.api("GET", f"/workouts/{workout_id}/streams").json()
        user_id, sport, summary = row
        assert user_id == twclient.DEFAULT_USER and sport == served["sport"]
        assert summary["distance_m"] == served["distance_m"] and summary["samples"] == served["samples"]
        efforts = db.execute("SELECT efforts FROM workout_best_efforts WHERE workout_id = %s",
                             (bytes.fromhex(workout_id.replace("-", "")),)).fetchone()
        assert efforts is not None, "an ended workout's best efforts are stored with its summary"
        assert efforts[0]["seconds"] == served["best_efforts"]
        chunks = db.execute("SELECT count(*) FROM workout_streams").fetchone()[0]
        assert chunks >= 1
        (log, lsn), = db.execute("SELECT log, lsn FROM read_store_checkpoints").fetchall()
        assert log == "local" and lsn >= served["last_lsn"]
        versions = [v for (v,) in db.execute("SELECT version FROM trackwire_schema_migrations ORDER BY version")]
        assert versions == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    server.stop()

    # A second process with nothing on its disk: everything comes from PostgreSQL.
    other = server_factory(tmp_path / "second", TRACKWIRE_STORE__URL=postgres_db).start()
    again = other.api("GET", f"/workouts/{workout_id}")
    assert again.status_code == 200, again.text
    for key in served:
        assert again.json()[key] == served[key], key
    assert other.api("GET", f"/workouts/{workout_id}/streams").json() == streams
    listed = other.api("GET", "/workouts").json()
    assert [w["id"] if "id" in w else w["workout_id"] for w in listed["workouts"]] == [workout_id]


def test_an_unreachable_store_stops_the_start_with_a_clear_error(server_factory, tmp_path):
    port = twclient.free_port()
    server = server_factory(TRACKWIRE_STORE__URL=f"postgres://tw:hunter2@127.0.0.1:{port}/tw?connect_timeout=1")
    try:
        server.start()
    except RuntimeError as e:
        message = str(e)
    else:
        raise AssertionError("the server started without its store")
    assert f"127.0.0.1:{port}" in message and "check that the server is up" in message, message
    assert "hunter2" not in message
