import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import twclient  # noqa: E402


def pytest_sessionstart(session):
    if not (twclient.TRACES / "SOURCES.md").exists():
        raise pytest.UsageError(
            f"no recorded traces at {twclient.TRACES}: the tests read ../shared/traces beside the clone; "
            "set TRACKWIRE_TRACES to their folder"
        )


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def make(data_dir: Path | None = None, quic_port: int = 0, **env):
        server = twclient.Server(data_dir or tmp_path / "data", env={k: str(v) for k, v in env.items()}, quic_port=quic_port)
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
def s3_server(tmp_path):
    """A moto S3 server on a free loopback port, with a bucket `lake`; stopped afterwards."""
    server = twclient.S3Server(tmp_path / "moto.log").start()
    server.create_bucket("lake")
    yield server
    server.kill()


@pytest.fixture
def kafka_broker(tmp_path):
    """A tansu broker on a free loopback port (scripts/setup-tansu.sh installs it); stopped afterwards."""
    broker = twclient.KafkaBroker(tmp_path / "tansu.log").start()
    yield broker
    broker.kill()


@pytest.fixture
def postgres_db():
    """A fresh database on the test PostgreSQL server (scripts/test.sh starts one and exports
    TRACKWIRE_TEST_POSTGRES_URL); its URL. Dropped afterwards."""
    yield from twclient.postgres_database()
