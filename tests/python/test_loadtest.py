"""10-second smoke runs of every load-test scenario against a local gateway.

Each run must exit 0 with a report that validates against loadtest/report.schema.json, plots that
are well-formed SVG with data in them, zero errors, and every sample the load test saw acked must
be in the lake exactly once after the gateway drains. One run also measures both ceilings (the
discard server and a bare rdkafka producer against the broker the gateway writes to)."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

import twclient

SCHEMA = json.loads((twclient.ROOT / "loadtest" / "report.schema.json").read_text())


def loadtest_bin() -> Path:
    if "TRACKWIRE_LOADTEST_BIN" in os.environ:
        return Path(os.environ["TRACKWIRE_LOADTEST_BIN"])
    return twclient.trackwire_bin().parent / "trackwire-loadtest"


def run_loadtest(server, scenario: str, out: Path, *extra: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(loadtest_bin()), scenario,
        "--target", f"127.0.0.1:{server.port}",
        "--quic-target", f"127.0.0.1:{server.quic_port}",
        "--quic-cert", str(server.data_dir / "quic-cert.pem"),
        "--duration-secs", "10",
        "--ramp-up-secs", "2",
        "--report", str(out / "report.json"),
        "--plots", str(out / "plots"),
        "--acked-log", str(out / "acked.ndjson"),
        "--no-progress",
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}"
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    return report


def check_report(report: dict, scenario: str, acked: list[dict]) -> None:
    assert report["scenario"] == scenario
    assert report["error_count"] == 0 and report["errors"] == {}, report["errors"]
    total = report["total"]
    assert total["samples_acked"] > 0
    assert total["samples_acked"] == sum(a["samples"] for a in acked if not a["duplicate"])
    assert total["batches_acked"] == len(acked)
    lat = total["ack_latency"]
    assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert abs(total["samples_per_s"] * report["elapsed_s"] - total["samples_acked"]) < 1
    assert len(report["timeline"]) >= 9, "one entry per second of a 10-second run"
    assert sum(s["samples"] for s in report["timeline"]) == total["samples_acked"]
    transports = {"quic-fleet": {"quic"}, "http-upload": {"http"}, "mix": {"quic", "http"}}[scenario]
    assert set(report["by_transport"]) == transports
    assert report["server"]["peak_rss_bytes"] > 0, "the gateway's memory was sampled from /metrics"
    generator = report["generator"]
    assert generator["cpu_s"] > 0 and 0 < generator["cpu_share"] <= 1.0, generator
    if scenario == "http-upload":
        assert generator["workouts_simulated_in_window"] == 0, "uploads are prepared before the run"


def check_plots(report: dict) -> None:
    names = {Path(p).name for p in report["plots"]}
    assert {"latency.svg", "throughput.svg", "server.svg"} <= names
    for path in report["plots"]:
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        lines = root.findall("{http://www.w3.org/2000/svg}polyline")
        assert lines, f"{path} has no data series"
        assert any(len(l.get("points", "").split()) >= 5 for l in lines), f"{path}: a series has too few points"


def check_lake(server, acked: list[dict]) -> None:
    server.stop()  # graceful: drains and flushes the lake
    counts = Counter((r[0], r[1], r[2]) for r in twclient.read_points(server.data_dir / "lake"))
    missing = [
        (a["workout_id"], a["seq"], i)
        for a in acked
        for i in range(a["samples"])
        if counts[(a["workout_id"], a["seq"], i)] != 1
    ]
    assert not missing, f"{len(missing)} acked samples not in the lake exactly once, e.g. {missing[:3]}"
    assert max(counts.values()) == 1, "a sample is stored twice"


def read_acked(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "acked.ndjson").read_text().splitlines()]


SCENARIOS = {
    # 40 watches at 1 Hz, one sample per batch: a batch per device per second.
    "quic-fleet": ["--devices", "40", "--batch-size", "1"],
    # Open loop at 20 uploads/s of 500 samples over two connections.
    "http-upload": ["--concurrency", "2", "--upload-batch-size", "500", "--upload-rate", "20",
                    "--upload-workout-minutes", "20"],
    "mix": ["--devices", "20", "--batch-size", "5", "--concurrency", "1", "--upload-rate", "10",
            "--upload-batch-size", "300", "--upload-workout-minutes", "10"],
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_smoke_run_reports_plots_no_errors_and_every_acked_sample_in_the_lake(scenario, server_factory, tmp_path):
    server = server_factory().start()
    out = tmp_path / scenario
    report = run_loadtest(server, scenario, out, *SCENARIOS[scenario])
    acked = read_acked(out)
    check_report(report, scenario, acked)
    check_plots(report)
    assert report["ceiling"] is None and report["compute_ceiling"] is None and report["kafka_ceiling"] is None
    check_lake(server, acked)


def test_ceilings_discard_server_and_bare_kafka_producer_in_the_same_run(server_factory, kafka_broker, tmp_path):
    server = server_factory(TRACKWIRE_KAFKA__BROKERS=kafka_broker.bootstrap, TRACKWIRE_KAFKA__PARTITIONS="3").start()
    out = tmp_path / "ceilings"
    report = run_loadtest(
        server, "http-upload", out,
        "--concurrency", "2", "--upload-batch-size", "500", "--upload-rate", "10", "--upload-workout-minutes", "10",
        "--ceiling", "--kafka-brokers", kafka_broker.bootstrap,
    )
    acked = read_acked(out)
    check_report(report, "http-upload", acked)
    ceiling = report["ceiling"]
    assert ceiling["discard"]["error_count"] == 0
    assert ceiling["discard"]["total"]["samples_acked"] > 0
    ours, discard = report["total"]["samples_per_s"], ceiling["discard"]["total"]["samples_per_s"]
    assert ceiling["ratio_samples_per_s"] == pytest.approx(ours / discard)
    compute = report["compute_ceiling"]
    assert compute["threads"] >= 1 and compute["samples"] > 0
    assert compute["ratio_samples_per_s"] == pytest.approx(ours / compute["samples_per_s"])
    kafka = report["kafka_ceiling"]
    assert kafka["messages"] == report["total"]["batches_acked"]
    assert kafka["ratio_samples_per_s"] == pytest.approx(ours / kafka["samples_per_s"])
    produced = kafka_broker.read_topic(kafka["topic"])
    assert len(produced) == kafka["messages"], "the bare producer's messages are on the broker"
    check_lake(server, acked)


def test_unreachable_gateway_is_a_clear_error(tmp_path):
    port = twclient.free_port()
    done = subprocess.run(
        [str(loadtest_bin()), "http-upload", "--target", f"127.0.0.1:{port}", "--duration-secs", "1",
         "--report", str(tmp_path / "r.json"), "--plots", str(tmp_path / "p")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert f"the gateway at 127.0.0.1:{port} is not reachable" in done.stderr
    assert "--target" in done.stderr
    assert not (tmp_path / "r.json").exists()
