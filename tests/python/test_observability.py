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


def test_text_logs_to_a_file_are_plain_without_terminal_colour_codes(server_factory):
    server = server_factory().start()
    assert server.api("GET", "/workouts").status_code == 200
    server.stop()
    text = server.log_path.read_text()
    assert "INFO" in text, text[:500]
    assert "\x1b[" not in text, "ANSI escape codes in a log file: " + repr(text[:300])


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


class _Collector:
    """A minimal OTLP/HTTP receiver (JSON encoding): keeps every export request's body."""

    def __init__(self):
        import http.server
        import threading

        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                bodies.append((self.path, self.headers.get("content-type"), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self):
        out = []
        for path, content_type, body in self.bodies:
            assert path == "/v1/traces" and content_type.startswith("application/json"), (path, content_type)
            for resource in json.loads(body)["resourceSpans"]:
                attributes = {a["key"]: a["value"].get("stringValue") for a in resource["resource"]["attributes"]}
                for scope in resource["scopeSpans"]:
                    for span in scope["spans"]:
                        out.append((attributes.get("service.name"), span))
        return out


def test_spans_are_exported_by_otlp_with_the_callers_trace_and_the_logged_ids(server_factory):
    collector = _Collector()
    server = server_factory(
        TRACKWIRE_LOG_FORMAT="json", TRACKWIRE_OTLP_ENDPOINT=collector.url, RUST_LOG="info,tower_http=debug"
    ).start()
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = requests.get(
        server.url + "/api/v1/workouts", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}, timeout=10
    )
    assert response.status_code == 401
    server.stop()  # the exporter flushes at exit
    collector.server.shutdown()

    spans = collector.spans()
    ours = [span for service, span in spans if span["traceId"] == trace_id]
    assert ours, f"no span of trace {trace_id} among {[(s['name'], s['traceId']) for _, s in spans][:10]}"
    (request_span,) = [span for span in ours if span["name"] == "http"]
    assert request_span["parentSpanId"] == parent_id
    assert {service for service, _ in spans} == {"trackwire"}
    logged = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert {line["span_id"] for line in logged if line["trace_id"] == trace_id} == {request_span["spanId"]}
