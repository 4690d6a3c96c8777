"""Decisions as they are recorded: what the platform services tell operators' views on the bus.

After each batch a service runner records, it publishes what it decided on ``wi.v1.recorded.decisions``
(core NATS, no stream; ``DecisionsRecorded``), a few decisions a message: the dashboard's live timeline.
The decision log in SQL stays the record (``wi audit``); these messages only tell it as it happens.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ._base import WHOLE_NUMBER, ContractModel, MessageId, Slug, Timestamp
from .verdicts import NoticeKind

MAX_REASONS = 20
"""The most reasons a recorded decision carries; the rest are in the decision log."""
MAX_DECISIONS_A_MESSAGE = 32
"""The most decisions one ``DecisionsRecorded`` carries."""
MAX_NOTICES_A_DECISION = 100
"""The most notices a recorded decision lists."""

Line = Annotated[str, StringConstraints(max_length=500)]
"""A line for people, cut to 500 characters."""


class SentNotice(ContractModel):
    """A notice a decision sent."""

    tenant: Slug
    """The tenant."""
    workload: Slug
    """The workload."""
    notice_id: MessageId
    """The notice."""
    notice_kind: NoticeKind
    """Its kind."""
    deadline: Timestamp | None = None
    """When the platform acts on it; none where none applies."""


class DecisionRecorded(ContractModel):
    """One decision of a platform service, as recorded in the decision log."""

    seq: Annotated[int, Field(ge=1, le=2**63 - 1), WHOLE_NUMBER]
    """Its place in the decision log."""
    service: Slug
    """The service that decided."""
    input_id: MessageId
    """The message it decided about."""
    action: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    """What it decided: place, notify, evict, alert..."""
    summary: Line
    """The decision in one line."""
    reasons: Annotated[list[Line], Field(max_length=MAX_REASONS)] = Field(default_factory=list)
    """Why, step by step (the first ``MAX_REASONS``)."""
    tenant: Slug | None = None
    """The tenant it is about; none for an operator's matter."""
    workload: Slug | None = None
    """The workload it is about."""
    notices: Annotated[list[SentNotice], Field(max_length=MAX_NOTICES_A_DECISION)] = Field(
        default_factory=list
    )
    """The notices it sent."""
    decided_at: Timestamp
    """When it was recorded."""


class DecisionsRecorded(ContractModel):
    """Decisions a service runner has just recorded, in log order: a core NATS message (no stream) on
    ``wi.v1.recorded.decisions``."""

    kind: Literal["decisions_recorded"] = "decisions_recorded"
    decisions: Annotated[list[DecisionRecorded], Field(min_length=1, max_length=MAX_DECISIONS_A_MESSAGE)]
    """The decisions."""
