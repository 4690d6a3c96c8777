"""A platform service's decision: what it decided about one input, why, and what it sends and changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wi.contract import HintBase, NoticeBase

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
