"""The decision log: every platform service's decisions in one sequence, in SQL.

Processes take turns to write: ``with log.turn(service, seen) as turn`` holds the log's head row (a row
lock on PostgreSQL, the write lock on SQLite) until the turn commits, so decisions get gapless, ordered
sequence numbers, and a process that catches up with ``seq > seen`` misses none and sees each once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Engine, insert, or_, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from wi.contract import Hint, HintBase, Notice, NoticeBase
from wi.database import as_utc, writing

from .decisions import Decision
from .inventory import InstancePlaced, InstanceReleased, InstanceResized, InventoryChange
from .tables import DecisionLogHead, DecisionRecord

_notices: TypeAdapter[list[NoticeBase]] = TypeAdapter(list[Notice])  # type: ignore[arg-type]  # all NoticeBase
_hints: TypeAdapter[list[HintBase]] = TypeAdapter(list[Hint])  # type: ignore[arg-type]  # all HintBase
_changes: TypeAdapter[list[InstancePlaced | InstanceReleased | InstanceResized]] = TypeAdapter(
    list[InventoryChange]
)
HEAD = "decisions"


class Turn:
    """One process's turn at the log: what others recorded since it last looked, what it decided before,
    and recording its new decisions; all in one transaction."""

    def __init__(self, session: Session, service: str, seen: int, head: int, with_changes: bool) -> None:
        self._session = session
        self.service = service
        self.seen = seen
        self.head = head
        """The log's last sequence number; after ``record``, that of the last decision recorded."""
        self._with_changes = with_changes
        self._decided_at: datetime | None = None

    def unseen(self) -> list[Decision]:
        """Decisions recorded since ``seen``, in order: the service's own, and (if the turn asked for
        them) every decision that changes what runs where."""
        query = _relevant(self.service, self._with_changes).where(col(DecisionRecord.seq) > self.seen)
        return [_decision(r) for r in self._session.exec(query.order_by(col(DecisionRecord.seq))).all()]

    def decided(self, input_ids: Collection[str]) -> dict[str, list[Decision]]:
        """The decisions the service recorded before for any of these inputs, by input."""
        if not input_ids:
            return {}
        query = select(DecisionRecord).where(
            DecisionRecord.service == self.service, col(DecisionRecord.input_id).in_(input_ids)
        )
        found: dict[str, list[Decision]] = {}
        for record in self._session.exec(query.order_by(col(DecisionRecord.seq))).all():
            found.setdefault(record.input_id, []).append(_decision(record))
        return found

    def record(self, decisions: Sequence[Decision], decided_at: datetime) -> list[Decision]:
        """Appends decisions to the log (committed with the turn); returns them with their sequence."""
        recorded = []
        for decision in decisions:
            self.head += 1
            recorded.append(replace(decision, seq=self.head, decided_at=decided_at))
        if recorded:  # one statement for all the rows: an ORM object per row costs more than deciding
            self._session.connection().execute(insert(DecisionRecord), [_row(d) for d in recorded])
        return recorded


class DecisionLog:
    """The decisions table: turns to write, and reads for the audit and for rebuilding state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def turn(self, service: str, seen: int, with_changes: bool = False) -> Iterator[Turn]:
        """Holds the log's head for one service's turn; commits what the turn recorded on a clean exit."""
        with writing(self.engine), Session(self.engine) as session:
            head = self._take_head(session)
            yield (turn := Turn(session, service, seen, head, with_changes))
            if turn.head != head:
                session.exec(
                    update(DecisionLogHead).where(col(DecisionLogHead.name) == HEAD).values(seq=turn.head)
                )
            session.commit()

    @staticmethod
    def _take_head(session: Session) -> int:
        """Locks the head row in the session's transaction (creating it on first use); returns its seq."""
        take = (
            update(DecisionLogHead).where(col(DecisionLogHead.name) == HEAD).values(seq=DecisionLogHead.seq)
        )
        if not session.exec(take).rowcount:
            session.add(DecisionLogHead(name=HEAD, seq=0))
            session.flush()  # a second process creating it at once fails on the key and retries its turn
        head = session.get(DecisionLogHead, HEAD)
        assert head is not None
        return head.seq

    def all_for(self, service: str | None, with_changes: bool = False, after: int = 0) -> list[Decision]:
        """A service's decisions (and every one that changes what runs where, if asked) after ``after``,
        in log order: what rebuilds a service's state at start. Service None: only those that change what
        runs where (what an inventory is built from)."""
        query = _relevant(service, with_changes).where(col(DecisionRecord.seq) > after)
        with Session(self.engine) as session:
            return [_decision(r) for r in session.exec(query.order_by(col(DecisionRecord.seq))).all()]

    def for_input(self, service: str, input_id: str) -> list[Decision]:
        """The decisions a service recorded for one input, in order."""
        query = select(DecisionRecord).where(
            DecisionRecord.service == service, DecisionRecord.input_id == input_id
        )
        with Session(self.engine) as session:
            return [_decision(r) for r in session.exec(query.order_by(col(DecisionRecord.seq))).all()]

    def recent(self, service: str | None = None, limit: int = 50) -> list[Decision]:
        """The newest decisions first."""
        query = select(DecisionRecord)
        if service is not None:
            query = query.where(DecisionRecord.service == service)
        with Session(self.engine) as session:
            rows = session.exec(query.order_by(col(DecisionRecord.seq).desc()).limit(limit)).all()
            return [_decision(r) for r in rows]

    def head(self) -> int:
        """The sequence number of the last decision recorded (0 for none)."""
        with Session(self.engine) as session:
            row = session.get(DecisionLogHead, HEAD)
        return 0 if row is None else row.seq


def _relevant(service: str | None, with_changes: bool) -> SelectOfScalar[DecisionRecord]:
    """A service's own decisions, and (``with_changes``) every decision that changes what runs where."""
    changes = col(DecisionRecord.changes) != "[]"
    if service is None:
        return select(DecisionRecord).where(changes)
    mine = col(DecisionRecord.service) == service
    return select(DecisionRecord).where(or_(mine, changes) if with_changes else mine)


def _json_list(models: Sequence[BaseModel]) -> str:
    """Models as a JSON list, each written by its own serializer (a union's adapter costs more)."""
    return "[" + ",".join(model.model_dump_json() for model in models) + "]"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _decision(record: DecisionRecord) -> Decision:
    return Decision(
        service=record.service,
        input_id=record.input_id,
        index=int(record.key.rsplit(":", 1)[1]),
        action=record.action,
        summary=record.summary,
        reasons=tuple(json.loads(record.reasons)),
        notices=tuple(_notices.validate_json(record.notices)),
        hints=tuple(_hints.validate_json(record.hints)),
        changes=tuple(_changes.validate_json(record.changes)),
        tenant=record.tenant,
        workload=record.workload,
        detail=json.loads(record.detail),
        seq=record.seq,
        decided_at=as_utc(record.decided_at),
    )


def _row(decision: Decision) -> dict[str, Any]:
    """A decision as a row of the decisions table."""
    assert decision.seq is not None and decision.decided_at is not None
    return {
        "key": decision.key,
        "seq": decision.seq,
        "service": decision.service,
        "input_id": decision.input_id,
        "action": decision.action,
        "tenant": decision.tenant,
        "workload": decision.workload,
        "summary": decision.summary[:500],
        "reasons": _json(list(decision.reasons)),
        "notices": _json_list(decision.notices),
        "hints": _json_list(decision.hints),
        "changes": _json_list(decision.changes),
        "detail": _json(decision.detail),
        "decided_at": decision.decided_at,
    }
