"""A platform service's decision: what it decided about one input, why, and what it sends and changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wi.contract import DecisionRecorded, HintBase, NoticeBase, SentNotice
from wi.contract.decisions import MAX_NOTICES_A_DECISION, MAX_REASONS

from .inventory import InstancePlaced, InstanceReleased, InstanceResized


@dataclass(frozen=True)
class Decision:
    """What a service decided about one input, why, and what it sent: notices, hints it commits for a
    workload (the terms of an accepted cost offer), and changes to what runs where."""

    service: str
    input_id: str
    index: int
    action: str
    summary: str
    reasons: tuple[str, ...] = ()
    notices: tuple[NoticeBase, ...] = ()
    hints: tuple[HintBase, ...] = ()
    changes: tuple[InstancePlaced | InstanceReleased | InstanceResized, ...] = ()
    tenant: str | None = None
    workload: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    """What the service needs to rebuild its own state from the log."""
    seq: int | None = None
    """Its place in the decision log, once recorded."""
    decided_at: datetime | None = None

    @property
    def key(self) -> str:
        """Unique per service, input and position: the same input yields the same keys."""
        return f"{self.service}:{self.input_id}:{self.index:04d}"


def _line(text: str) -> str:
    return text if len(text) <= 500 else text[:499] + "…"


def recorded(decision: Decision) -> DecisionRecorded:
    """A recorded decision as told on the bus: its reasons and notices cut to the message's bounds."""
    assert decision.seq is not None and decision.decided_at is not None, "only a recorded decision is told"
    return DecisionRecorded(
        seq=decision.seq,
        service=decision.service,
        input_id=decision.input_id,
        action=decision.action,
        summary=_line(decision.summary),
        reasons=[_line(r) for r in decision.reasons[:MAX_REASONS]],
        tenant=decision.tenant,
        workload=decision.workload,
        notices=[
            SentNotice(
                tenant=n.tenant,
                workload=n.workload,
                notice_id=n.notice_id,
                notice_kind=n.kind,
                deadline=n.deadline,
            )
            for n in decision.notices[:MAX_NOTICES_A_DECISION]
        ],
        decided_at=decision.decided_at,
    )
