"""The registry's SQL store: applies hints, notices and responses idempotently and answers queries.

Synchronous (SQLAlchemy); the async shell calls it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from wi.contract import ClearHint, Hint, HintBase, Notice, NoticeBase, NoticeState, ResponseBase
from wi.database import as_utc, create_db_engine, insert_once, migrate

from .semantics import (
    OPEN,
    EffectiveHints,
    NoticeStatus,
    effective_hints,
    respond,
    scope_of,
    supersedes,
)
from .tables import CurrentHint, HintRecord, NoticeRecord, ResponseRecord

_hint_adapter: TypeAdapter[HintBase] = TypeAdapter(Hint)
_notice_adapter: TypeAdapter[NoticeBase] = TypeAdapter(Notice)


@dataclass(frozen=True)
class StoredNotice:
    """A notice as stored: the notice, its status and its position in the notices stream (a cursor)."""

    notice: NoticeBase
    status: NoticeStatus
    stream_seq: int


class UnknownNotice(LookupError):
    """A response names a notice the registry has not (yet) seen; the bus retries it, then parks it."""


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

    def effective_for_tenant(self, tenant: str, kind: str | None, now: datetime) -> list[EffectiveHints]:
        """The hints in effect for each of a tenant's workloads (of one kind, if given)."""
        query = select(CurrentHint.workload, CurrentHint.body).where(CurrentHint.tenant == tenant)
        if kind is not None:
            query = query.where(CurrentHint.kind == kind)
        by_workload: dict[str, list[HintBase]] = {}
        with Session(self.engine) as session:
            for workload, body in session.exec(query.order_by(col(CurrentHint.workload))).all():
                by_workload.setdefault(workload, []).append(_hint_adapter.validate_json(body))
        return [effective_hints(tenant, workload, hints, now) for workload, hints in by_workload.items()]

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
        row = NoticeRecord(
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
        return insert_once(self.engine, row, notice.notice_id)

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

    def notice_cursor(self, tenant: str, workload: str) -> int:
        """The stream sequence of the workload's newest notice (0 if none): where to read on from."""
        with Session(self.engine) as session:
            newest = session.exec(
                select(func.max(NoticeRecord.stream_seq)).where(
                    NoticeRecord.tenant == tenant, NoticeRecord.workload == workload
                )
            ).one()
        return int(newest or 0)

    def notices(
        self,
        tenant: str,
        workload: str,
        *,
        after: int | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[StoredNotice]:
        """A workload's notices in stream order: those after a cursor, or (open_only) those still open."""
        query = select(NoticeRecord).where(NoticeRecord.tenant == tenant, NoticeRecord.workload == workload)
        if after is not None:
            query = query.where(NoticeRecord.stream_seq > after)
        if open_only:
            query = query.where(col(NoticeRecord.state).in_([s.value for s in OPEN]))
        with Session(self.engine) as session:
            records = session.exec(query.order_by(col(NoticeRecord.stream_seq)).limit(limit)).all()
            return [
                StoredNotice(_notice_adapter.validate_json(r.body), _status(r), r.stream_seq) for r in records
            ]


def _status(record: NoticeRecord) -> NoticeStatus:
    deferred = as_utc(record.deferred_until) if record.deferred_until else None
    return NoticeStatus(NoticeState(record.state), deferred)
