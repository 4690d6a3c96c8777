"""The registry's SQL store: applies hints, notices and responses idempotently and answers queries.

Synchronous (SQLAlchemy); the async shell calls it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine, func, insert, text, true, tuple_, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from wi.bus.subjects import STREAMS
from wi.contract import (
    ClearHint,
    Family,
    Hint,
    HintBase,
    Notice,
    NoticeBase,
    NoticeState,
    ResponseAction,
    ResponseBase,
)
from wi.database import as_utc, create_db_engine, migrate, writing

from .semantics import (
    OPEN,
    EffectiveHints,
    NoticeStatus,
    ResponseRefused,
    effective_hints,
    respond,
    scope_of,
    supersedes,
)
from .tables import CurrentHint, HintRecord, NoticeRecord, ResponseRecord, Watermark

_hint_adapter: TypeAdapter[HintBase] = TypeAdapter(Hint)
_notice_adapter: TypeAdapter[NoticeBase] = TypeAdapter(Notice)
_IS_OPEN = col(NoticeRecord.state).in_([s.value for s in OPEN])
"""A notice still to be acted on (pending or deferred)."""


@dataclass(frozen=True)
class StoredNotice:
    """A notice as stored: the notice, its status and its position in the notices stream (a cursor)."""

    notice: NoticeBase
    status: NoticeStatus
    stream_seq: int


@dataclass(frozen=True)
class NoticeTrail:
    """A notice as stored, with when the registry recorded it and the first response applied to it."""

    notice: NoticeBase
    status: NoticeStatus
    recorded_at: datetime | None
    """None for a notice recorded before the registry kept the time."""
    answer: ResponseAction | None = None
    """The first applied response's action; none yet."""
    answered_at: datetime | None = None
    """When the bus received that response (the time it was judged as of)."""


@dataclass(frozen=True)
class Judgement:
    """What became of a response: the notice's status after it, or why it was refused."""

    status: NoticeStatus | None
    """The notice's status after the response (as it was, if refused); none for an unknown notice."""
    refused: ResponseRefused | UnknownNotice | None = None
    notice_kind: str | None = None
    cursor: int | None = None
    """The notice's position in the notices stream."""
    drill: bool = False
    """The notice is a drill."""


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

    def apply_hints(self, hints: Sequence[tuple[HintBase, int]], through: int | None = None) -> list[bool]:
        """Records hints (and clears), each with its stream sequence, in one transaction; each becomes
        current if it is the latest of its kind and scope. False for a hint applied before.

        ``through`` moves the hints watermark there in the same transaction. Rows are written in bulk
        (one INSERT for the history, one INSERT and one UPDATE for the current hints), not object by
        object: this is the registry's hot path.
        """
        with writing(self.engine), Session(self.engine) as session:
            ids = {(hint.tenant, hint.hint_id) for hint, _ in hints}
            known = (
                set(
                    session.exec(
                        select(HintRecord.tenant, HintRecord.hint_id).where(
                            tuple_(col(HintRecord.tenant), col(HintRecord.hint_id)).in_(ids)
                        )
                    ).all()
                )
                if ids
                else set()
            )
            keys = {(h.tenant, h.workload, scope_of(h), h.subject_kind) for h, _ in hints}
            stored = {
                (t, w, scope, kind): (as_utc(issued_at), seq)
                for t, w, scope, kind, issued_at, seq in session.execute(
                    sql_select(
                        col(CurrentHint.tenant),
                        col(CurrentHint.workload),
                        col(CurrentHint.scope),
                        col(CurrentHint.kind),
                        col(CurrentHint.issued_at),
                        col(CurrentHint.stream_seq),
                    )
                    .where(
                        tuple_(
                            col(CurrentHint.tenant),
                            col(CurrentHint.workload),
                            col(CurrentHint.scope),
                            col(CurrentHint.kind),
                        ).in_(keys)
                    )
                    .with_for_update()
                ).all()
            }
            latest = dict(stored)
            history: list[dict[str, Any]] = []
            current: dict[tuple[str, str, str, str], dict[str, Any]] = {}
            applied = []
            for hint, stream_seq in hints:
                if (hint.tenant, hint.hint_id) in known:
                    applied.append(False)
                    continue
                known.add((hint.tenant, hint.hint_id))
                applied.append(True)
                row = {**_hint_columns(hint, stream_seq, hint.model_dump_json()), "hint_id": hint.hint_id}
                history.append(row)
                key = (hint.tenant, hint.workload, scope_of(hint), hint.subject_kind)
                before = latest.get(key)
                if before is None or supersedes((hint.issued_at, stream_seq), before):
                    latest[key] = (hint.issued_at, stream_seq)
                    current[key] = row
            if history:
                session.execute(insert(HintRecord), history)
            if new := [row for key, row in current.items() if key not in stored]:
                session.execute(insert(CurrentHint), new)
            if replaced := [row for key, row in current.items() if key in stored]:
                session.execute(update(CurrentHint), replaced)
            self._advance(session, Family.HINT, through)
            session.commit()
        return applied

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

    def effective_many(
        self, workloads: Collection[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], EffectiveHints]:
        """The hints in effect for each of these (tenant, workload) pairs, in one query."""
        if not workloads:
            return {}
        query = select(CurrentHint.tenant, CurrentHint.workload, CurrentHint.body).where(
            tuple_(col(CurrentHint.tenant), col(CurrentHint.workload)).in_(workloads)
        )
        found: dict[tuple[str, str], list[HintBase]] = {w: [] for w in workloads}
        with Session(self.engine) as session:
            for tenant, workload, body in session.exec(query).all():
                found[(tenant, workload)].append(_hint_adapter.validate_json(body))
        return {(t, w): effective_hints(t, w, hints, now) for (t, w), hints in found.items()}

    def effective_for_tenant(
        self, tenant: str, kind: str | None, now: datetime, after: str = "", limit: int = 500
    ) -> list[EffectiveHints]:
        """The hints in effect for one page of a tenant's workloads (of one kind, if given): up to
        ``limit`` workloads named after ``after``, in name order. Read a page at a time, so a tenant of any
        size never sits in memory whole."""
        rows = select(CurrentHint.workload, CurrentHint.body).where(CurrentHint.tenant == tenant)
        if kind is not None:
            rows = rows.where(CurrentHint.kind == kind)
        names = (
            select(CurrentHint.workload)
            .distinct()
            .where(CurrentHint.tenant == tenant, CurrentHint.workload > after)
            .order_by(col(CurrentHint.workload))
            .limit(limit)
        )
        if kind is not None:
            names = names.where(CurrentHint.kind == kind)
        by_workload: dict[str, list[HintBase]] = {}
        with Session(self.engine) as session:
            page = session.exec(names).all()
            if not page:
                return []
            found = rows.where(col(CurrentHint.workload).in_(page)).order_by(col(CurrentHint.workload))
            for workload, body in session.exec(found).all():
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

    def apply_notices(
        self, notices: Sequence[tuple[NoticeBase, int]], through: int | None = None, *, recorded_at: datetime
    ) -> list[bool]:
        """Records notices as pending, each with its stream sequence, in one transaction; False for a notice
        recorded before. New notices are stamped ``recorded_at`` (the registry's clock: from then on every
        channel hands them out). ``through`` moves the notices watermark there in the same transaction."""
        with writing(self.engine), Session(self.engine) as session:
            ids = [notice.notice_id for notice, _ in notices]
            known = (
                set(
                    session.exec(
                        select(NoticeRecord.notice_id).where(col(NoticeRecord.notice_id).in_(ids))
                    ).all()
                )
                if ids
                else set()
            )
            recorded, rows = [], []
            for notice, stream_seq in notices:
                recorded.append(notice.notice_id not in known)
                if notice.notice_id in known:
                    continue
                known.add(notice.notice_id)
                rows.append(
                    {
                        "notice_id": notice.notice_id,
                        "tenant": notice.tenant,
                        "workload": notice.workload,
                        "kind": notice.kind,
                        "issued_at": notice.issued_at,
                        "deadline": notice.deadline,
                        "state": NoticeState.PENDING,
                        "stream_seq": stream_seq,
                        "body": notice.model_dump_json(),
                        "recorded_at": recorded_at,
                    }
                )
            if rows:  # one statement for all the rows: an ORM object per row costs more than the rest
                session.connection().execute(insert(NoticeRecord), rows)
            self._advance(session, Family.NOTICE, through)
            session.commit()
        return recorded

    def known_notices(self, notice_ids: Collection[str]) -> set[str]:
        """Which of these notices are recorded."""
        with Session(self.engine) as session:
            return set(
                session.exec(
                    select(NoticeRecord.notice_id).where(col(NoticeRecord.notice_id).in_(notice_ids))
                ).all()
            )

    def apply_responses(
        self, responses: Sequence[tuple[ResponseBase, int, datetime]], through: int | None = None
    ) -> list[Judgement]:
        """Applies responses (each with its stream sequence and the time it was received) to their notices,
        in order, in one transaction, judging each: the notice's new status, or why the response was
        refused. A response applied before changes nothing and gets the notice's status.

        ``through`` moves the responses watermark there in the same transaction.
        """
        with writing(self.engine), Session(self.engine) as session:
            notice_ids = {response.notice_id for response, _, _ in responses}
            records = (
                {
                    record.notice_id: record
                    for record in session.exec(
                        select(NoticeRecord)
                        .where(col(NoticeRecord.notice_id).in_(notice_ids))
                        .with_for_update()
                    ).all()
                }
                if notice_ids
                else {}
            )
            ids = {(response.tenant, response.response_id) for response, _, _ in responses}
            seen = (
                set(
                    session.exec(
                        select(ResponseRecord.tenant, ResponseRecord.response_id).where(
                            tuple_(col(ResponseRecord.tenant), col(ResponseRecord.response_id)).in_(ids)
                        )
                    ).all()
                )
                if ids
                else set()
            )
            outcomes: list[Judgement] = []
            for response, stream_seq, received_at in responses:
                record = records.get(response.notice_id)
                if record is None:
                    unknown = UnknownNotice(f"notice_id: no notice {response.notice_id} is known")
                    outcomes.append(Judgement(None, unknown))
                    continue
                status = _status(record.state, record.deferred_until)
                notice = _notice_adapter.validate_json(record.body)
                judged = partial(
                    Judgement, notice_kind=record.kind, cursor=record.stream_seq, drill=notice.drill is True
                )
                if (response.tenant, response.response_id) in seen:
                    outcomes.append(judged(status))
                    continue
                try:
                    status = respond(notice, status, response, received_at)
                except ResponseRefused as refused:
                    outcomes.append(judged(status, refused))
                    continue
                seen.add((response.tenant, response.response_id))
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
                outcomes.append(judged(status))
            self._advance(session, Family.RESPONSE, through)
            session.commit()
        return outcomes

    # Watermarks

    @staticmethod
    def _advance(session: Session, family: Family, through: int | None) -> None:
        """Moves a stream's watermark up to ``through`` (never back) in the session's transaction."""
        if through is None:
            return
        stream = STREAMS[family].name
        row = session.get(Watermark, stream, with_for_update=True)
        if row is None:
            session.add(Watermark(stream=stream, seq=through))
        elif through > row.seq:
            row.seq = through
            session.add(row)

    def watermark(self, family: Family) -> int:
        """How far the registry has applied a family's stream: every message up to it is applied or parked."""
        with Session(self.engine) as session:
            row = session.get(Watermark, STREAMS[family].name)
        return 0 if row is None else row.seq

    def notice(self, notice_id: str) -> tuple[NoticeBase, NoticeStatus] | None:
        """A notice and its stored status, or None."""
        with Session(self.engine) as session:
            record = session.get(NoticeRecord, notice_id)
            if record is None:
                return None
            return _notice_adapter.validate_json(record.body), _status(record.state, record.deferred_until)

    def notice_trail(self, notice_id: str) -> NoticeTrail | None:
        """A notice with its stored status, when it was recorded and its first applied response; or None."""
        first = (
            sql_select(col(ResponseRecord.kind), col(ResponseRecord.received_at))
            .where(col(ResponseRecord.notice_id) == notice_id)
            .order_by(col(ResponseRecord.stream_seq))
            .limit(1)
            .subquery()
        )
        # One statement, so the notice's state and its first response are read as of one commit (two
        # reads could see a response applied after the notice's row was read: answered yet pending).
        trail = (
            sql_select(
                col(NoticeRecord.body),
                col(NoticeRecord.state),
                col(NoticeRecord.deferred_until),
                col(NoticeRecord.recorded_at),
                first.c.kind,
                first.c.received_at,
            )
            .outerjoin(first, true())
            .where(col(NoticeRecord.notice_id) == notice_id)
        )
        with Session(self.engine) as session:
            row = session.execute(trail).first()
        if row is None:
            return None
        return NoticeTrail(
            notice=_notice_adapter.validate_json(row.body),
            status=_status(row.state, row.deferred_until),
            recorded_at=as_utc(row.recorded_at) if row.recorded_at else None,
            answer=None if row.kind is None else ResponseAction(row.kind),
            answered_at=None if row.received_at is None else as_utc(row.received_at),
        )

    def notice_cursor(self, tenant: str, workload: str) -> int:
        """The stream sequence of the workload's newest notice (0 if none): where to read on from."""
        with Session(self.engine) as session:
            newest = session.exec(
                select(func.max(NoticeRecord.stream_seq)).where(
                    NoticeRecord.tenant == tenant, NoticeRecord.workload == workload
                )
            ).one()
        return int(newest or 0)

    def workloads(self, limit: int = 1000) -> list[tuple[str, str]]:
        """(tenant, workload) of the workloads with hints in effect or notices, in order (the first
        ``limit``)."""
        hinted = select(CurrentHint.tenant, CurrentHint.workload)
        noticed = select(NoticeRecord.tenant, NoticeRecord.workload)
        both = hinted.union(noticed).subquery()
        query = select(both.c.tenant, both.c.workload).order_by(both.c.tenant, both.c.workload).limit(limit)
        with Session(self.engine) as session:
            return [(tenant, workload) for tenant, workload in session.exec(query).all()]

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
        with Session(self.engine) as session:
            return _notices(session, tenant, workload, after, open_only, limit)

    def open_notices_pages(
        self, asked: Sequence[tuple[str, str, int | None]], limit: int
    ) -> list[list[StoredNotice]]:
        """For each (tenant, workload, cursor) asked: up to ``limit`` of the workload's open notices after
        the cursor, in stream order. First pages (no cursor, the most asked for) are read in one query."""
        firsts = {(t, w) for t, w, after in asked if after is None}
        with Session(self.engine) as session:
            first_pages = _first_open_pages(session, firsts, limit) if firsts else {}
            return [
                first_pages.get((t, w), []) if after is None else _notices(session, t, w, after, True, limit)
                for t, w, after in asked
            ]


def _notices(
    session: Session, tenant: str, workload: str, after: int | None, open_only: bool, limit: int
) -> list[StoredNotice]:
    query = select(NoticeRecord).where(NoticeRecord.tenant == tenant, NoticeRecord.workload == workload)
    if after is not None:
        query = query.where(NoticeRecord.stream_seq > after)
    if open_only:
        query = query.where(_IS_OPEN)
    records = session.exec(query.order_by(col(NoticeRecord.stream_seq)).limit(limit)).all()
    return [_stored(r.body, r.state, r.deferred_until, r.stream_seq) for r in records]


def _first_open_pages(
    session: Session, workloads: Collection[tuple[str, str]], limit: int
) -> dict[tuple[str, str], list[StoredNotice]]:
    """Up to ``limit`` open notices of each of these (tenant, workload) pairs, in stream order."""
    rank = func.row_number().over(
        partition_by=(NoticeRecord.tenant, NoticeRecord.workload), order_by=col(NoticeRecord.stream_seq)
    )
    ranked = (
        sql_select(
            col(NoticeRecord.tenant),
            col(NoticeRecord.workload),
            col(NoticeRecord.state),
            col(NoticeRecord.deferred_until),
            col(NoticeRecord.stream_seq),
            col(NoticeRecord.body),
            rank.label("rank"),
        )
        .where(
            tuple_(col(NoticeRecord.tenant), col(NoticeRecord.workload)).in_(workloads),
            _IS_OPEN,
        )
        .subquery()
    )
    query = sql_select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.stream_seq)
    pages: dict[tuple[str, str], list[StoredNotice]] = {}
    for row in session.execute(query):
        stored = _stored(row.body, row.state, row.deferred_until, row.stream_seq)
        pages.setdefault((row.tenant, row.workload), []).append(stored)
    return pages


def _hint_columns(hint: HintBase, stream_seq: int, body: str) -> dict[str, Any]:
    """What both hint tables keep of a hint (the current-hints row and the history row)."""
    return {
        "tenant": hint.tenant,
        "workload": hint.workload,
        "scope": scope_of(hint),
        "kind": hint.subject_kind,
        "is_clear": isinstance(hint, ClearHint),
        "issued_at": hint.issued_at,
        "expires_at": hint.expires_at,
        "stream_seq": stream_seq,
        "body": body,
    }


def _stored(body: str, state: str, deferred_until: datetime | None, stream_seq: int) -> StoredNotice:
    return StoredNotice(_notice_adapter.validate_json(body), _status(state, deferred_until), stream_seq)


def _status(state: str, deferred_until: datetime | None) -> NoticeStatus:
    return NoticeStatus(NoticeState(state), as_utc(deferred_until) if deferred_until else None)
