"""Observability of a real server: JSON log lines with the seed's fields and the request's W3C
trace id, and every Prometheus metric it exposes documented in docs/observability.md."""
import json
import re
import uuid
from pathlib import Path

import requests

import twclient

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def test_json_logs_carry_the_seed_fields_and_the_callers_trace(server_factory, tmp_path):
    server = server_factory(TRACKWIRE_LOG_FORMAT="json", RUST_LOG="info,tower_http=debug").start()
    trace_id = uuid.uuid4().hex
    request_id = f"req-{uuid.uuid4()}"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-request-id": request_id}
    response = requests.get(server.url + "/api/v1/workouts", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["x-request-id"] == request_id
    # A request without a traceparent gets a trace of its own.
    requests.get(server.url + "/healthcheck", timeout=10)
    server.stop()

    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert lines, "the server logged"
    for line in lines:
        for key in ("timestamp", "level", "service", "trace_id", "span_id", "correlation_id", "message"):
            assert key in line, (key, line)
        assert line["service"] == "trackwire"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"]), line
    ours = [line for line in lines if line["trace_id"] == trace_id]
    assert ours, "the request's lines carry the caller's trace id"
    assert {line["correlation_id"] for line in ours} == {request_id}
    assert all(re.fullmatch(r"[0-9a-f]{16}", line["span_id"]) and line["span_id"] != "00f067aa0ba902b7" for line in ours)
    others = {line["trace_id"] for line in lines if line.get("path") == "/healthcheck"}
    assert others and all(re.fullmatch(r"[0-9a-f]{32}", t) and t != trace_id for t in others)


def test_every_exposed_metric_is_documented(server_factory):
    server = server_factory().start()
    text = requests.get(server.url + "/metrics", timeout=10).text
    server.stop()
    exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert len(exposed) > 10, text
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text()))
    missing = sorted(exposed - documented)
    assert not missing, f"metrics not in docs/observability.md: {missing}"


def test_the_container_healthcheck_command_follows_the_server(server_factory):
    import subprocess

    server = server_factory().start()
    probe = lambda url: subprocess.run(  # noqa: E731
        [str(twclient.trackwire_bin()), "healthcheck", "--url", url], capture_output=True, text=True, timeout=30
    )
    assert probe(server.url + "/healthcheck").returncode == 0
    server.stop()
    down = probe(server.url + "/healthcheck")
    assert down.returncode == 1 and "is the server running" in down.stderr, down.stderr
