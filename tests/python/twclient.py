"""An independent Trackwire client for the end-to-end tests.

It encodes batches with code that `flatc --python` generates from codec/schema/telemetry.fbs at
test time (no Rust involved), parses GPX with the standard library, and drives a real
`trackwire serve` process.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "codec" / "schema" / "telemetry.fbs"
# Third-party recordings live beside the clone (never copied into it); override for other layouts.
TRACES = Path(os.environ.get("TRACKWIRE_TRACES", ROOT.parent / "shared" / "traces"))
VENV = Path(os.environ.get("TRACKWIRE_VENV", Path.home() / ".cache" / "trackwire" / "venv"))
TOKEN = "dev-token"
# API bearer tokens in the tests are HS256 JWTs with this secret and issuer (as the server is told).
JWT_SECRET = "e2e-test-secret-e2e-test-secret-0123456789"
JWT_ISSUER = "https://sso.trackwire.test/realms/e2e"
DEFAULT_USER = "py-user-1"

INT32_MIN = -(2**31)


def _generate_python_bindings() -> None:
    out = Path(tempfile.mkdtemp(prefix="tw-flatc-"))
    flatc = VENV / "bin" / "flatc"
    subprocess.run([str(flatc), "--python", "-o", str(out), str(SCHEMA)], check=True)
    sys.path.insert(0, str(out))


_generate_python_bindings()

import flatbuffers  # noqa: E402
from trackwire.wire import Batch as FbBatch  # noqa: E402
from trackwire.wire import ControlEvent as FbControlEvent  # noqa: E402
from trackwire.wire import Sample as FbSample  # noqa: E402
from trackwire.wire import Uuid as FbUuid  # noqa: E402
from trackwire.wire.ControlKind import ControlKind  # noqa: E402
from trackwire.wire.Sport import Sport  # noqa: E402


@dataclass
class Point:
    time_ms: int
    lat: float | None
    lon: float | None
    ele: float | None = None
    hr: int | None = None
    cad: int | None = None


def parse_gpx(path: Path) -> list[Point]:
    """Track points of a GPX 1.1 file, with Garmin TrackPointExtension hr/cad when present."""
    points = []
    for _, el in ET.iterparse(path):
        if not el.tag.endswith("}trkpt"):
            continue
        when = ele = hr = cad = None
        for child in el.iter():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "time":
                when = datetime.fromisoformat(child.text.strip().replace("Z", "+00:00"))
            elif tag == "ele":
                ele = float(child.text)
            elif tag == "hr":
                hr = int(child.text)
            elif tag == "cad":
                cad = int(child.text)
        points.append(Point(int(when.timestamp() * 1000), float(el.get("lat")), float(el.get("lon")), ele, hr, cad))
        el.clear()
    return points


def e7(deg: float | None) -> int:
    return INT32_MIN if deg is None else round(deg * 1e7)


def encode_batch(
    points: list[Point],
    workout_id: uuid.UUID,
    seq: int,
    *,
    device_id: str = "py-device-1",
    user_id: str = "py-user-1",
    sport: int = Sport.Running,
    events: list[tuple[int, int]] = (),
) -> bytes:
    """A Batch finished with its file identifier. `events` is [(time_ms, ControlKind)]."""
    base = min([p.time_ms for p in points] + [t for t, _ in events])
    b = flatbuffers.Builder(64 + 24 * len(points))
    device = b.CreateString(device_id)
    user = b.CreateString(user_id)
    model = b.CreateString("python-flatbuffers")
    FbBatch.StartSamplesVector(b, len(points))
    for p in reversed(points):
        FbSample.CreateSample(
            b,
            p.time_ms - base,
            e7(p.lat),
            e7(p.lon),
            INT32_MIN if p.ele is None else round(p.ele * 100),
            p.hr or 0,
            255 if p.cad is None else p.cad,
            0xFFFF,
            0xFFFF,
            0,
        )
    samples = b.EndVector()
    FbBatch.StartEventsVector(b, len(events))
    for t, kind in reversed(list(events)):
        FbControlEvent.CreateControlEvent(b, t - base, kind)
    evs = b.EndVector()
    FbBatch.Start(b)
    FbBatch.AddDeviceId(b, device)
    FbBatch.AddUserId(b, user)
    FbBatch.AddWorkoutId(b, FbUuid.CreateUuid(b, list(workout_id.bytes)))
    FbBatch.AddSport(b, sport)
    FbBatch.AddSeq(b, seq)
    FbBatch.AddBaseTimeMs(b, base)
    FbBatch.AddDeviceModel(b, model)
    FbBatch.AddSamples(b, samples)
    FbBatch.AddEvents(b, evs)
    root = FbBatch.End(b)
    b.Finish(root, file_identifier=b"TWB1")
    return bytes(b.Output())


def batches_of(
    points: list[Point], size: int, workout_id: uuid.UUID, complete: bool = True, user_id: str = DEFAULT_USER
) -> list[bytes]:
    chunks = [points[i : i + size] for i in range(0, len(points), size)]
    out = []
    for seq, chunk in enumerate(chunks):
        events = []
        if complete and seq == len(chunks) - 1:
            events = [(chunk[-1].time_ms, ControlKind.Complete)]
        out.append(encode_batch(chunk, workout_id, seq, events=events, user_id=user_id))
    return out


def resident_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or another /proc status field in KiB)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trackwire_bin() -> Path:
    if "TRACKWIRE_BIN" in os.environ:
        return Path(os.environ["TRACKWIRE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "trackwire" / "target"))
    return target / "debug" / "trackwire"


@dataclass
class Server:
    data_dir: Path
    env: dict = field(default_factory=dict)
    port: int = 0
    quic_port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("TRACKWIRE_TLS__CERT_PATH") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.port = self.port or free_port()
        self.quic_port = self.quic_port or free_udp_port()
        env = dict(os.environ)
        env.update({
            "RUST_LOG": "info",
            "TRACKWIRE_LAKE__MAX_FILE_AGE_SECS": "0.5",
            "TRACKWIRE_SINKS__FLUSH_INTERVAL_MS": "100",
            "TRACKWIRE_AUTH__HS256_SECRET": JWT_SECRET,
            "TRACKWIRE_AUTH__ISSUER": JWT_ISSUER,
            # The recorded traces are years old: keep their positions unless a test asks otherwise.
            "TRACKWIRE_PRIVACY__COORDINATE_RETENTION_DAYS": "0",
        })
        env.update(self.env)
        env = {k: v for k, v in env.items() if v != ""}  # "" unsets a default
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{self.port}-{int(time.time()*1000)}.log"
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
                str(trackwire_bin()),
                "serve",
                "--http-addr",
                f"127.0.0.1:{self.port}",
                "--quic-addr",
                f"127.0.0.1:{self.quic_port}",
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                # Over HTTPS, the test's own certificate is the one to trust.
                verify = self.env.get("TRACKWIRE_TLS__CERT_PATH") or True
                if requests.get(self.url + "/healthcheck", timeout=1, verify=verify).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy in 60 s:\n" + self.log_path.read_text())

    def stop(self) -> None:
        """Graceful: SIGTERM, then wait for the drain (flushes the lake)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=60)
            assert rc == 0, f"server exited with {rc}:\n{self.log_path.read_text()}"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def api(self, method: str, path: str, user: str | None = DEFAULT_USER, admin: bool = False, **kwargs) -> requests.Response:
        """An /api/v1 call as `user` (None: without a token)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if user is not None:
            headers["Authorization"] = f"Bearer {jwt(user, admin=admin)}"
        return requests.request(method, self.url + "/api/v1" + path, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, body: bytes, token: str | None = TOKEN, headers: dict | None = None, timeout: float = 30) -> requests.Response:
        h = {"Content-Type": "application/x-flatbuffers"}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        return requests.post(self.url + "/v1/ingest", data=body, headers=h, timeout=timeout)


def jwt(user: str, admin: bool = False, secret: str = JWT_SECRET, issuer: str = JWT_ISSUER, ttl_s: int = 3600) -> str:
    """An HS256 JWT (RFC 7519) made with the standard library, as an OIDC provider would issue it."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {"sub": user, "iss": issuer, "exp": int(time.time()) + ttl_s}
    if admin:
        claims["scope"] = "openid trackwire:admin"
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def frame(payload: bytes) -> bytes:
    """A QUIC protocol frame: 4-byte big-endian length, then the payload (codec/PROTOCOL.md)."""
    return len(payload).to_bytes(4, "big") + payload


EVENT_SCHEMAS = ROOT / "docs" / "events"


def validate_event(event: dict) -> None:
    """Checks an event record against the JSON Schema published for its type (docs/events/)."""
    import json

    import jsonschema

    path = EVENT_SCHEMAS / f"{event.get('type')}.schema.json"
    assert path.exists(), f"no published schema for event type {event.get('type')!r}"
    jsonschema.Draft202012Validator(json.loads(path.read_text())).validate(event)


def read_events(data_dir: Path, workout_id: str | None = None) -> list[dict]:
    """The workout's (or every) event from the JSON-lines event log, in log order, each checked
    against its published schema."""
    import json

    events = []
    for path in sorted((data_dir / "events").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            validate_event(event)
            if workout_id is None or event["workout_id"] == workout_id:
                events.append(event)
    return events


class LocalService:
    """A helper server process of the tests. `pause()`/`resume()` make it unreachable without
    losing its in-memory state (SIGSTOP/SIGCONT): an outage, not a wipe."""

    proc: subprocess.Popen | None

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=30)


@dataclass
class S3Server(LocalService):
    """moto_server (PyPI) speaking the S3 protocol on 127.0.0.1."""

    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        self.port = free_port()
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                requests.get(self.endpoint, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start:\n" + self.log_path.read_text())

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )

    def storage_options(self) -> dict:
        """What delta-rs needs to read (and vacuum) a table on this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def env(self, url: str) -> dict:
        """Environment for `trackwire serve` to keep its lake at `url` on this server."""
        return {
            "TRACKWIRE_LAKE__URL": url,
            "TRACKWIRE_LAKE__S3_ENDPOINT": self.endpoint,
            "TRACKWIRE_LAKE__S3_REQUEST_TIMEOUT_SECS": "2",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }


    def filesystem(self):
        from pyarrow import fs

        return fs.S3FileSystem(
            endpoint_override=self.endpoint, scheme="http", access_key="test", secret_key="test", region="us-east-1"
        )


TANSU = Path(os.environ.get("TRACKWIRE_TANSU", Path.home() / ".cache" / "trackwire" / "tools" / "bin" / "tansu"))


@dataclass
class KafkaBroker(LocalService):
    """tansu (crates.io), a Kafka-protocol broker with in-memory storage, on 127.0.0.1."""

    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "KafkaBroker":
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(TANSU), "broker", "--storage-engine", "memory://tansu/", "--listener-url", url,
             "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("tansu did not start:\n" + self.log_path.read_text())


    def read_topic(self, topic: str, idle_s: float = 3.0) -> list:
        """Every message of every partition of `topic`, by explicit assignment (tansu has no
        consumer groups), as (partition, offset, key, value, headers)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "trackwire-tests",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        last = time.time()
        while time.time() - last < idle_s:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(str(msg.error()))
            out.append((msg.partition(), msg.offset(), msg.key(), msg.value(), dict(msg.headers() or [])))
            last = time.time()
        consumer.close()
        return out


def delta_table(lake, table: str, s3: "S3Server | None" = None, version: int | None = None):
    """A lake table through delta-rs (the `deltalake` package: an independent Delta reader),
    or None while the table does not exist yet. `lake` is a directory, or `bucket/prefix` on `s3`."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if s3 is None:
        uri, options = str(Path(lake) / table), None
    else:
        uri, options = f"s3://{lake}/{table}", s3.storage_options()
    try:
        return DeltaTable(uri, storage_options=options, version=version)
    except TableNotFoundError:
        return None


def read_points_s3(s3: "S3Server", bucket_prefix: str):
    """All rows of the points table on S3, through delta-rs and pyarrow."""
    table = delta_table(bucket_prefix, "points", s3)
    if table is None:
        return []
    columns = ["workout_id", "seq", "sample_index", "lat", "lon", "heart_rate_bpm"]
    return table.to_pyarrow_table(columns=columns).to_pylist()


def read_points(lake: Path):
    """All rows of the points table's newest version, through delta-rs, queried with DuckDB."""
    import duckdb
    import pyarrow as pa

    table = delta_table(lake, "points")
    points = table.to_pyarrow_table() if table is not None else None
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    if points is None:
        return []
    con.register("points", points)
    return con.execute(
        """SELECT workout_id, seq, sample_index, epoch_ms(time) AS time_ms, lat, lon, heart_rate_bpm,
                  altitude_m, date, hour
           FROM points"""
    ).fetchall()


def postgres_database():
    """Generator: creates a database on TRACKWIRE_TEST_POSTGRES_URL, yields its URL, drops it."""
    import psycopg

    base = os.environ.get("TRACKWIRE_TEST_POSTGRES_URL")
    if not base:
        raise RuntimeError("TRACKWIRE_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
    name = f"py_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
