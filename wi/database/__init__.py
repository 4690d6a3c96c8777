"""The SQL database behind WI: engines for SQLite or PostgreSQL, and the Alembic migrations of every table.

Tables live with their rooms (``wi.registry.tables``, ``wi.auth.tables``); ``migrations/`` changes them.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["MIGRATIONS", "as_utc", "create_db_engine", "migrate", "writing"]

_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def writing(engine: Engine) -> AbstractContextManager[object]:
    """Held around a transaction that writes. On SQLite, threads of this process take turns at a lock of
    their own: SQLite has one writer, and a writer that finds it busy sleeps in steps up to 100 ms, while
    a lock hands over at once. PostgreSQL locks rows, so nothing is held there."""
    lock = _WRITERS.get(engine)
    return nullcontext() if lock is None else lock


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite gets WAL, a busy timeout and its parent folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the threads that use it at once (the registry, the services, the gateway's
        # worker threads): connections beyond the pool are closed after use, and opening one costs more
        # than the query it serves.
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=20, max_overflow=20)
        event.listen(engine, "connect", _sqlite_pragmas)
        _WRITERS[engine] = threading.Lock()
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Brings the database schema to ``revision`` with Alembic."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
