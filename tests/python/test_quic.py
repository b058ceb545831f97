"""QUIC live ingest end to end: a recorded trace streamed (time-compressed) by `trackwire import
--quic`, a kill -9 of the server mid-stream, and an independent QUIC stack (aioquic) with
flatc-generated batches and acks."""
import asyncio
import json
import subprocess
import time
import uuid
from collections import Counter

import requests

import twclient

RUN = twclient.TRACES / "sportslib__runs_2067489619.fit"  # 503 samples, 2 timer stops (SOURCES.md)
RIDE = twclient.TRACES / "sportslib__rides_3939576645.fit"  # 2547 samples, 10 timer stops


def import_quic(server, trace, *extra, timeout=120):
    """Starts `trackwire import --quic` against `server`; returns the process (JSON on stdout)."""
    cmd = [
        str(twclient.trackwire_bin()),
        "import",
        "--json",
        "--quic",
        f"127.0.0.1:{server.quic_port}",
        "--ca",
        str(server.data_dir / "quic-cert.pem"),
        *extra,
        str(trace),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc, timeout=120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"import failed ({proc.returncode}):\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def rows_of(server, workout_id: str):
    return [r for r in twclient.read_points(server.data_dir / "lake") if r[0] == workout_id]


def test_a_live_trace_over_quic_lands_once_with_its_events_in_order(server_factory):
    server = server_factory().start()
    # 2,825 s of running replayed 1000x faster, 20 samples per batch, like a watch streaming live.
    result = finished(import_quic(server, RUN, "--live-speed", "1000", "--batch-size", "20"))
    quic = result["quic"]
    assert quic["batches"] == 26 and quic["acked"] == 26, quic
    server.stop()

    workout = result["workout_id"]
    rows = rows_of(server, workout)
    counts = Counter((r[1], r[2]) for r in rows)
    assert len(rows) == 503, f"{len(rows)} rows for the 503 recorded samples"
    assert max(counts.values()) == 1, "a sample appears twice"
    times = [r[3] for r in sorted(rows, key=lambda r: (r[1], r[2]))]
    assert times == sorted(times), "samples keep their recorded order"

    events = twclient.read_events(server.data_dir, workout)
    kinds = [e["type"] for e in events if e["type"] != "WorkoutUpdated"]
    # The watch's two timer stops: one mid-run (resumed 5 s later), one when the run ended.
    assert kinds == ["WorkoutStarted", "WorkoutPaused", "WorkoutResumed", "WorkoutPaused", "WorkoutCompleted"], kinds
    stamps = [e["timestamp"] for e in events if e["type"] != "WorkoutUpdated"]
    assert stamps == sorted(stamps), "events in time order"
    assert [e["lsn"] for e in events] == sorted(e["lsn"] for e in events), "events in log order"


def test_kill_dash_nine_mid_stream_then_restart_the_client_resends_and_the_lake_has_every_sample_once(
    server_factory,
):
    server = server_factory().start()
    # 7,476 s of riding at 1500x: about 5 s of streaming, 255 batches of 10 samples.
    proc = import_quic(server, RIDE, "--live-speed", "1500", "--batch-size", "10")
    time.sleep(2.0)
    assert proc.poll() is None, "the import must still be streaming when the server dies"
    server.kill()  # SIGKILL: no drain, no GoingAway
    time.sleep(1.0)
    restarted = server_factory(server.data_dir, quic_port=server.quic_port).start()
    result = finished(proc)
    quic = result["quic"]
    assert quic["acked"] == quic["batches"] == 255, quic
    assert quic["reconnects"] >= 1, quic
    restarted.stop()

    rows = rows_of(restarted, result["workout_id"])
    counts = Counter((r[1], r[2]) for r in rows)
    assert len(counts) == 2547, f"{len(counts)} distinct samples of 2547"
    assert max(counts.values()) == 1, "re-sent batches were stored twice"


async def _stream_with_aioquic(port: int, cafile: str, token: bytes, bodies: list[bytes]):
    from aioquic.asyncio import connect
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=["trackwire/1"], server_name="localhost")
    config.load_verify_locations(cafile=cafile)

    async def read_frame(reader):
        size = int.from_bytes(await reader.readexactly(4), "big")
        return await reader.readexactly(size)

    async with connect("127.0.0.1", port, configuration=config) as client:
        reader, writer = await client.create_stream()  # stream 0: the hello
        writer.write(twclient.frame(token))
        writer.write_eof()
        device = await asyncio.wait_for(read_frame(reader), 10)
        reader, writer = await client.create_stream()  # the workout's stream
        for body in bodies:
            writer.write(twclient.frame(body))
        acks = [await asyncio.wait_for(read_frame(reader), 10) for _ in bodies]
        writer.write_eof()
        return device, acks


def test_an_independent_quic_stack_streams_a_workout_and_gets_its_acks(server_factory):
    from trackwire.wire.Ack import Ack
    from trackwire.wire.AckStatus import AckStatus

    server = server_factory().start()
    points = twclient.parse_gpx(twclient.TRACES / "georust-gpx__garmin-activity.gpx")
    workout = uuid.uuid4()
    bodies = twclient.batches_of(points, 100, workout)
    cafile = str(server.data_dir / "quic-cert.pem")
    device, acks = asyncio.run(_stream_with_aioquic(server.quic_port, cafile, twclient.TOKEN.encode(), bodies))
    assert device == b"*", "dev-token is bound to any device"
    assert len(acks) == len(bodies) == 10
    for seq, raw in enumerate(acks):
        assert raw[4:8] == b"TWA1", "acks carry the TWA1 file identifier"
        ack = Ack.GetRootAs(raw, 0)
        assert ack.Status() == AckStatus.Ok, ack.Message()
        assert ack.AckedSeq() == seq
        assert bytes(ack.WorkoutId().Bytes()) == workout.bytes
    # Each ack's latency is in the QUIC transport's histogram.
    metrics = requests.get(server.url + "/metrics", timeout=5).text
    assert 'trackwire_ingest_ack_duration_seconds_count{transport="quic"} 10' in metrics, metrics
    assert 'trackwire_ingest_ack_duration_seconds_bucket{transport="quic",le="+Inf"} 10' in metrics
    server.stop()
    rows = rows_of(server, str(workout))
    assert len(rows) == len(points) == 988
    assert max(Counter((r[1], r[2]) for r in rows).values()) == 1
