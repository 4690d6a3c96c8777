"""Shared fixtures: a real nats-server from the wheel per test, SQLite and the real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.ci import unavailable
from tests.platform import Running, start_platform
from wi.bus import Bus
from wi.registry import RegistryStore
from wi.server import EmbeddedNatsServer

POSTGRES_URL = os.environ.get("WI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    """A nats-server with JetStream on a free port, its store in the test's folder."""
    server = EmbeddedNatsServer(tmp_path / "nats", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def bus(nats_server: EmbeddedNatsServer) -> AsyncIterator[Bus]:
    """A bus connection with the WI streams in place."""
    connection = await Bus.connect(nats_server.url, source="/tests")
    await connection.ensure_streams()
    yield connection
    await connection.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped after it.

    Skips when PostgreSQL is unreachable, except under CI=true, where that is a failure.
    """
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"wi_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc.orig}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each registry test runs on a SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wi.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[RegistryStore]:
    """A migrated registry store."""
    opened = RegistryStore.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """A running platform on embedded defaults, with tokens for tenants acme and globex and the platform."""
    async with start_platform(tmp_path / "platform") as platform:
        yield platform
