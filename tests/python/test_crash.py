"""kill -9 while a client streams; every acked batch is in the lake exactly once after restart,
and re-sending what was not acked lands exactly once too."""
import threading
import time
import uuid
from collections import Counter

import requests

import twclient

TRACE = twclient.TRACES / "sportslib__rides_3939576645.gpx"
BATCH = 10


class Streamer(threading.Thread):
    """Posts batches in order until told to stop or the server goes away; remembers acks."""

    def __init__(self, server, bodies):
        super().__init__(daemon=True)
        self.server, self.bodies = server, bodies
        self.acked: set[int] = set()
        self.failed_at: int | None = None

    def run(self):
        for seq, body in enumerate(self.bodies):
            try:
                r = self.server.post(body, timeout=10)
            except requests.RequestException:
                self.failed_at = seq
                return
            if r.status_code != 200:
                self.failed_at = seq
                return
            self.acked.add(seq)


def lake_counts(server):
    return Counter((r[0], r[1], r[2]) for r in twclient.read_points(server.data_dir / "lake"))


def test_kill_dash_nine_mid_stream_loses_nothing_acked_and_stores_nothing_twice(server_factory):
    points = twclient.parse_gpx(TRACE)
    workouts = [uuid.uuid4(), uuid.uuid4()]
    bodies = {w: twclient.batches_of(points, BATCH, w) for w in workouts}
    sizes = {w: [len(points[i : i + BATCH]) for i in range(0, len(points), BATCH)] for w in workouts}

    server = server_factory().start()
    streamers = [Streamer(server, bodies[w]) for w in workouts]
    for s in streamers:
        s.start()
    deadline = time.time() + 60
    while min(len(s.acked) for s in streamers) < 60 and time.time() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL: no drain, no flush
    for s in streamers:
        s.join(timeout=30)
    acked = {w: s.acked for w, s in zip(workouts, streamers)}
    assert all(len(a) >= 60 for a in acked.values())
    assert all(len(a) < len(bodies[w]) for w, a in acked.items()), "the kill must land mid-stream"

    # Restart on the same data dir, drain, and look: every acked batch exactly once.
    restarted = server_factory(server.data_dir).start()
    restarted.stop()
    counts = lake_counts(restarted)
    assert max(counts.values()) == 1, "duplicated samples after crash recovery"
    for w in workouts:
        for seq in acked[w]:
            for i in range(sizes[w][seq]):
                assert counts[(str(w), seq, i)] == 1, f"acked sample {w} seq {seq} #{i} missing"

    # The client re-sends everything it has no ack for (and one it has, as a careless client would).
    again = server_factory(server.data_dir).start()
    for w in workouts:
        resend = [seq for seq in range(len(bodies[w])) if seq not in acked[w]] + [max(acked[w])]
        for seq in resend:
            r = again.post(bodies[w][seq])
            assert r.status_code == 200, r.text
    summary = again.api("GET", f"/workouts/{workouts[0]}").json()
    again.stop()
    counts = lake_counts(again)
    assert max(counts.values()) == 1, "duplicated samples after re-sending"
    for w in workouts:
        total = sum(1 for k in counts if k[0] == str(w))
        assert total == len(points), f"{total} of {len(points)} samples of {w} in the lake"
    assert summary["samples"] == len(points)
    assert summary["status"] == "completed"


def test_kill_dash_nine_during_commits_compactions_and_an_erasure_leaves_an_openable_table(server_factory, tmp_path):
    """Lake commits, compactions, settler merges and an erasure run all the time here (files
    commit after 0.1 s, partitions compact above 2 small files, hours the stream has left settle
    after 0.5 s); each life ends in kill -9 at an arbitrary point. After
    each restart delta-rs opens both tables, every acked sample is there exactly once, and the
    erased user's rows are in no version's files."""
    import pyarrow.parquet as pq

    env = dict(
        TRACKWIRE_LAKE__MAX_FILE_AGE_SECS="0.1",
        TRACKWIRE_LAKE__COMPACT_ABOVE_FILES="2",
        TRACKWIRE_LAKE__VACUUM_RETENTION_SECS="1",
        # Hours the stream has left settle within a second: kills land in settler merges too.
        TRACKWIRE_LAKE__SETTLED_AFTER_SECS="0.5",
        TRACKWIRE_LAKE__TARGET_FILE_BYTES="14000",  # some commits reach it: both kinds of merge
    )
    points = twclient.parse_gpx(TRACE)
    kept, erased = uuid.uuid4(), uuid.uuid4()
    kept_bodies = twclient.batches_of(points, BATCH, kept)
    erased_bodies = twclient.batches_of(points, BATCH, erased, user_id="crash-erased")
    sizes = [len(points[i : i + BATCH]) for i in range(0, len(points), BATCH)]
    data = tmp_path / "data"
    acked: set[int] = set()
    seq = 0
    for life, pause_s in enumerate([0.35, 1.3, 2.2]):
        server = server_factory(data, **env).start()
        if life == 2:
            # The erased user's batches are all in; erase them and die while the lake rewrites.
            def erase():
                try:
                    server.api("DELETE", "/users/crash-erased", user="crash-erased")
                except requests.RequestException:
                    pass  # killed before it answered: asked again below

            eraser = threading.Thread(target=erase, daemon=True)
            eraser.start()
        started = time.time()
        while time.time() - started < pause_s and seq < len(kept_bodies):
            if server.post(kept_bodies[seq]).status_code == 200:
                acked.add(seq)
            if life < 2:
                assert server.post(erased_bodies[seq]).status_code == 200
            seq += 1
        server.kill()
        # Every restart: both tables open, and what was acked is there exactly once.
        check = server_factory(data, **env).start()
        check.stop()
        counts = lake_counts(check)
        assert counts and max(counts.values()) == 1, f"life {life}: duplicated samples"
        for s in acked:
            for i in range(sizes[s]):
                assert counts[(str(kept), s, i)] == 1, f"life {life}: acked sample seq {s} #{i} missing"
        assert twclient.delta_table(data / "lake", "workouts") is not None

    # The erasure the kill interrupted is asked again (the client saw no answer); then nothing of
    # the user remains in the table or in any stored file.
    server = server_factory(data, **env).start()
    r = server.api("DELETE", "/users/crash-erased", user="crash-erased")
    assert r.status_code == 200, r.text
    server.stop()
    assert str(erased) not in {k[0] for k in lake_counts(server)}
    for path in (data / "lake" / "points").rglob("*.parquet"):
        if "_delta_log" not in str(path):
            ids = set(pq.read_table(path, columns=["workout_id"]).column("workout_id").to_pylist())
            assert str(erased) not in ids, path
