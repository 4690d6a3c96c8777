"""Decisions in SQL: recorded once per key, read back to audit and to rebuild a service's state."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from wi.contract import Hint, HintBase, Notice, NoticeBase
from wi.database import as_utc

from .tables import DecisionLock, DecisionRecord

_notices: TypeAdapter[list[NoticeBase]] = TypeAdapter(list[Notice])  # type: ignore[arg-type]  # all NoticeBase
_hints: TypeAdapter[list[HintBase]] = TypeAdapter(list[Hint])  # type: ignore[arg-type]  # all HintBase


@dataclass(frozen=True)
class Decision:
    """What a service decided about one input, why, and what it sent: notices, and hints it commits for a
    workload (the terms of an accepted cost offer)."""

    service: str
    input_id: str
    index: int
    action: str
    summary: str
    reasons: tuple[str, ...] = ()
    notices: tuple[NoticeBase, ...] = ()
    hints: tuple[HintBase, ...] = ()
    tenant: str | None = None
    workload: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    decided_at: datetime | None = None

    @property
    def key(self) -> str:
        """Unique per service, input and position: the same input yields the same keys."""
        return f"{self.service}:{self.input_id}:{self.index:04d}"


class AuditStore:
    """The decisions table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def decide_exclusively(
        self,
        service: str,
        input_id: str,
        since: datetime,
        known: Collection[str],
        decide: Callable[[list[Decision], bool], list[Decision]],
        decided_at: datetime,
    ) -> tuple[list[Decision], list[Decision]]:
        """Decides about one input and records, holding the service's lock.

        ``decide`` gets the service's decisions made at ``since`` or later whose keys are not ``known``
        (those of other processes, to apply first), and whether the input was decided before (then it
        must decide nothing); it returns new decisions. Processes of one service take the lock in turn
        (a row lock on PostgreSQL, the write lock on SQLite), so none decides on a state another is
        changing, and none decides an input another has decided. Returns the decisions recorded now and
        those recorded for the input before.
        """
        with Session(self.engine) as session:
            self._take_lock(session, service, decided_at)
            unseen = _unseen(session, service, since, known)
            before = _for_input(session, service, input_id)
            fresh = decide(unseen, bool(before))
            for decision in fresh:
                session.add(_record(decision, decided_at))
            session.commit()
        return [replace(d, decided_at=decided_at) for d in fresh], before

    def unseen(self, service: str, since: datetime, known: Collection[str]) -> list[Decision]:
        """A service's decisions made at ``since`` or later whose keys are not ``known``, oldest first."""
        with Session(self.engine) as session:
            return _unseen(session, service, since, known)

    @staticmethod
    def _take_lock(session: Session, service: str, now: datetime) -> None:
        """Takes the service's lock row in the session's transaction, creating it on first use."""
        take = update(DecisionLock).where(col(DecisionLock.service) == service).values(taken_at=now)
        if session.exec(take).rowcount:
            return
        try:
            session.add(DecisionLock(service=service, taken_at=now))
            session.flush()
        except IntegrityError:  # another process created it first: wait for it like any other holder
            session.rollback()
            session.exec(take)

    def for_input(self, service: str, input_id: str) -> list[Decision]:
        """The decisions a service recorded for one input, in order."""
        with Session(self.engine) as session:
            return _for_input(session, service, input_id)

    def recent(self, service: str | None = None, limit: int = 50) -> list[Decision]:
        """The newest decisions first."""
        query = select(DecisionRecord)
        if service is not None:
            query = query.where(DecisionRecord.service == service)
        query = query.order_by(col(DecisionRecord.decided_at).desc(), col(DecisionRecord.key).desc()).limit(
            limit
        )
        with Session(self.engine) as session:
            return [_decision(r) for r in session.exec(query).all()]

    def all_for(self, service: str) -> list[Decision]:
        """Every decision of a service, oldest first (to rebuild its state)."""
        query = select(DecisionRecord).where(DecisionRecord.service == service)
        with Session(self.engine) as session:
            return [_decision(r) for r in session.exec(query.order_by(col(DecisionRecord.decided_at))).all()]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _decision(record: DecisionRecord) -> Decision:
    index = int(record.key.rsplit(":", 1)[1])
    return Decision(
        service=record.service,
        input_id=record.input_id,
        index=index,
        action=record.action,
        summary=record.summary,
        reasons=tuple(json.loads(record.reasons)),
        notices=tuple(_notices.validate_json(record.notices)),
        hints=tuple(_hints.validate_json(record.hints)),
        tenant=record.tenant,
        workload=record.workload,
        detail=json.loads(record.detail),
        decided_at=as_utc(record.decided_at),
    )


def _for_input(session: Session, service: str, input_id: str) -> list[Decision]:
    query = select(DecisionRecord).where(
        DecisionRecord.service == service, DecisionRecord.input_id == input_id
    )
    return [_decision(r) for r in session.exec(query.order_by(col(DecisionRecord.key))).all()]


def _unseen(session: Session, service: str, since: datetime, known: Collection[str]) -> list[Decision]:
    """Reads the keys in the window first, and whole rows only for those not ``known``."""
    keys = select(DecisionRecord.key).where(
        DecisionRecord.service == service, DecisionRecord.decided_at >= since
    )
    unseen = [key for key in session.exec(keys).all() if key not in known]
    if not unseen:
        return []
    rows = select(DecisionRecord).where(col(DecisionRecord.key).in_(unseen))
    return [_decision(r) for r in session.exec(rows.order_by(col(DecisionRecord.decided_at))).all()]


def _record(decision: Decision, decided_at: datetime) -> DecisionRecord:
    return DecisionRecord(
        key=decision.key,
        service=decision.service,
        input_id=decision.input_id,
        action=decision.action,
        tenant=decision.tenant,
        workload=decision.workload,
        summary=decision.summary[:500],
        reasons=_json(list(decision.reasons)),
        notices=_notices.dump_json(list(decision.notices)).decode(),
        hints=_hints.dump_json(list(decision.hints)).decode(),
        detail=_json(decision.detail),
        decided_at=decided_at,
    )
