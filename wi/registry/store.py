"""The registry's SQL store: applies hints, notices and responses idempotently and answers queries.

Synchronous (SQLAlchemy); the async shell calls it in a worker thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import TypeAdapter
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, create_engine, select

from wi.contract import ClearHint, Hint, HintBase, Notice, NoticeBase, ResponseBase

from .semantics import (
    EffectiveHints,
    NoticeState,
    NoticeStatus,
    effective_hints,
    respond,
    scope_of,
    supersedes,
)
from .tables import CurrentHint, HintRecord, NoticeRecord, ResponseRecord

MIGRATIONS = Path(__file__).parent / "migrations"

_hint_adapter: TypeAdapter[HintBase] = TypeAdapter(Hint)
_notice_adapter: TypeAdapter[NoticeBase] = TypeAdapter(Notice)


class UnknownNotice(LookupError):
    """A response names a notice the registry has not (yet) seen; the bus retries it, then parks it."""


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Brings the database schema to ``revision`` with Alembic."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class RegistryStore:
    """Hints, notices and responses in SQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> RegistryStore:
        """Connects to the database at ``url`` and migrates it to the current schema."""
        engine = create_db_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Releases the connection pool."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raises unless the database answers."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # Hints

    def apply_hint(self, hint: HintBase, stream_seq: int) -> bool:
        """Records a hint (or clear) and makes it current if it is the latest; False if already applied."""
        scope = scope_of(hint)
        kind = hint.subject_kind
        body = hint.model_dump_json()
        with Session(self.engine) as session:
            if session.get(HintRecord, (hint.tenant, hint.hint_id)) is not None:
                return False
            session.add(
                HintRecord(
                    tenant=hint.tenant,
                    hint_id=hint.hint_id,
                    workload=hint.workload,
                    scope=scope,
                    kind=kind,
                    is_clear=isinstance(hint, ClearHint),
                    issued_at=hint.issued_at,
                    expires_at=hint.expires_at,
                    stream_seq=stream_seq,
                    body=body,
                )
            )
            current = session.exec(
                select(CurrentHint)
                .where(
                    CurrentHint.tenant == hint.tenant,
                    CurrentHint.workload == hint.workload,
                    CurrentHint.scope == scope,
                    CurrentHint.kind == kind,
                )
                .with_for_update()
            ).first()
            if current is None:
                current = CurrentHint(
                    tenant=hint.tenant,
                    workload=hint.workload,
                    scope=scope,
                    kind=kind,
                    hint_id="",
                    is_clear=False,
                    issued_at=hint.issued_at,
                    stream_seq=-1,
                    body="",
                )
            elif not supersedes(
                (hint.issued_at, stream_seq), (as_utc(current.issued_at), current.stream_seq)
            ):
                session.commit()
                return True
            current.hint_id = hint.hint_id
            current.is_clear = isinstance(hint, ClearHint)
            current.issued_at = hint.issued_at
            current.expires_at = hint.expires_at
            current.stream_seq = stream_seq
            current.body = body
            session.add(current)
            session.commit()
            return True

    def current_hints(self, tenant: str, workload: str) -> list[HintBase]:
        """The latest hint or clear of each kind and scope, expired ones included."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(CurrentHint.body)
                .where(CurrentHint.tenant == tenant, CurrentHint.workload == workload)
                .order_by(col(CurrentHint.scope), col(CurrentHint.kind))
            ).all()
        return [_hint_adapter.validate_json(body) for body in rows]

    def effective(self, tenant: str, workload: str, now: datetime) -> EffectiveHints:
        """The hints in effect for a workload at ``now``."""
        return effective_hints(tenant, workload, self.current_hints(tenant, workload), now)

    def history(
        self, tenant: str, workload: str, kind: str | None = None, limit: int = 100
    ) -> list[HintBase]:
        """A workload's hints and clears, newest first."""
        query = select(HintRecord.body).where(HintRecord.tenant == tenant, HintRecord.workload == workload)
        if kind is not None:
            query = query.where(HintRecord.kind == kind)
        query = query.order_by(col(HintRecord.issued_at).desc(), col(HintRecord.stream_seq).desc()).limit(
            limit
        )
        with Session(self.engine) as session:
            return [_hint_adapter.validate_json(body) for body in session.exec(query).all()]

    # Notices and responses

    def apply_notice(self, notice: NoticeBase, stream_seq: int) -> bool:
        """Records a notice as pending; False if it was recorded already."""
        with Session(self.engine) as session:
            if session.get(NoticeRecord, notice.notice_id) is not None:
                return False
            session.add(
                NoticeRecord(
                    notice_id=notice.notice_id,
                    tenant=notice.tenant,
                    workload=notice.workload,
                    kind=notice.kind,
                    issued_at=notice.issued_at,
                    deadline=notice.deadline,
                    state=NoticeState.PENDING,
                    stream_seq=stream_seq,
                    body=notice.model_dump_json(),
                )
            )
            session.commit()
            return True

    def apply_response(self, response: ResponseBase, stream_seq: int, received_at: datetime) -> NoticeStatus:
        """Applies a response to its notice and returns the new status.

        Raises UnknownNotice if the notice is not known yet, ResponseRefused if the notice cannot take it.
        A response applied before is not applied again.
        """
        with Session(self.engine) as session:
            record = session.exec(
                select(NoticeRecord).where(NoticeRecord.notice_id == response.notice_id).with_for_update()
            ).first()
            if record is None:
                raise UnknownNotice(f"notice_id: no notice {response.notice_id} is known")
            status = _status(record)
            if session.get(ResponseRecord, (response.tenant, response.response_id)) is not None:
                return status
            notice = _notice_adapter.validate_json(record.body)
            status = respond(notice, status, response, received_at)
            record.state = status.state
            record.deferred_until = status.deferred_until
            session.add(record)
            session.add(
                ResponseRecord(
                    tenant=response.tenant,
                    response_id=response.response_id,
                    notice_id=response.notice_id,
                    workload=response.workload,
                    kind=response.kind,
                    received_at=received_at,
                    stream_seq=stream_seq,
                    body=response.model_dump_json(),
                )
            )
            session.commit()
            return status

    def notice(self, notice_id: str) -> tuple[NoticeBase, NoticeStatus] | None:
        """A notice and its stored status, or None."""
        with Session(self.engine) as session:
            record = session.get(NoticeRecord, notice_id)
            if record is None:
                return None
            return _notice_adapter.validate_json(record.body), _status(record)

    def notices(self, tenant: str, workload: str, limit: int = 100) -> list[tuple[NoticeBase, NoticeStatus]]:
        """A workload's notices, newest first, with their stored status."""
        with Session(self.engine) as session:
            records = session.exec(
                select(NoticeRecord)
                .where(NoticeRecord.tenant == tenant, NoticeRecord.workload == workload)
                .order_by(col(NoticeRecord.stream_seq).desc())
                .limit(limit)
            ).all()
            return [(_notice_adapter.validate_json(r.body), _status(r)) for r in records]


def _status(record: NoticeRecord) -> NoticeStatus:
    deferred = as_utc(record.deferred_until) if record.deferred_until else None
    return NoticeStatus(NoticeState(record.state), deferred)
