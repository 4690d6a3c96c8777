"""Verdicts: the registry's judgement of where a notice stands, told to the platform on the bus.

The registry alone judges responses (with the platform's clock: when JetStream stored the response). It
publishes a verdict whenever a response moves a notice on or is refused. Services act on verdicts, never
on responses, and the gateway answers a response with them, so every part of the platform agrees on each
notice's state. Which notices it has just recorded it tells once a batch (``NoticesRecorded``, core NATS):
that wakes long polls and event streams; and whose hints it has just changed (``HintsRecorded``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ._base import WHOLE_NUMBER, ContractModel, Family, MessageId, Reason, Slug, TenantMessage, Timestamp
from .notices import NoticeState, ResponseAction

NoticeKind = Literal[
    "eviction", "maintenance", "power_event", "resize", "cost_offer", "reconfiguration", "placement"
]
RefusalRule = Literal["not_allowed", "late", "conflict", "defer_too_long", "unknown_notice"]


class Verdict(TenantMessage):
    """Where a notice stands after the registry judged a response to it."""

    family: ClassVar[Family] = Family.VERDICT

    kind: Literal["verdict"] = "verdict"
    verdict_id: MessageId
    """Fixed by what was judged (the notice stored, or the response), so a repeat is stored once."""
    notice_id: MessageId
    """The notice."""
    notice_kind: NoticeKind | None = None
    """Its kind; none for a response naming no notice the registry knows."""
    state: NoticeState | None = None
    """Where the notice stands now; none for a response naming no notice the registry knows."""
    deferred_until: Timestamp | None = None
    """The deferral in force, once a defer was accepted."""
    response_id: MessageId
    """The response judged."""
    response: ResponseAction
    """That response's action."""
    refused: RefusalRule | None = None
    """Why the response was refused (the notice stays as it was); none if it was applied."""
    reason: Reason | None = None
    """The refusal, for people."""
    cursor: Annotated[int, Field(ge=0, le=2**63 - 1), WHOLE_NUMBER] | None = None
    """The notice's position in the notices stream (the cursor HTTP clients read notices after)."""
    drill: Literal[True] | None = None
    """true when the notice is a drill (``NoticeBase.drill``): no platform service acts on this verdict.
    Absent otherwise."""

    @property
    def message_id(self) -> str:
        return self.verdict_id


MAX_RECORDED = 10_000


class NoticeRecorded(ContractModel):
    """A notice the registry has just recorded (it is pending)."""

    tenant: Slug
    """The tenant."""
    workload: Slug
    """The workload."""
    notice_id: MessageId
    """The notice."""
    notice_kind: NoticeKind
    """Its kind."""
    cursor: Annotated[int, Field(ge=0, le=2**63 - 1), WHOLE_NUMBER]
    """Its position in the notices stream."""


class NoticesRecorded(ContractModel):
    """Which notices the registry recorded in one batch: a core NATS message (no stream) on
    ``wi.v1.recorded.notices``, for what waits on a workload's notices (HTTP long polls, event streams)."""

    kind: Literal["notices_recorded"] = "notices_recorded"
    notices: Annotated[list[NoticeRecorded], Field(max_length=MAX_RECORDED)]
    """The notices, in stream order."""


class HintedWorkload(ContractModel):
    """A workload whose hints the registry has just changed."""

    tenant: Slug
    """The tenant."""
    workload: Slug
    """The workload."""


class HintsRecorded(ContractModel):
    """Whose hints the registry changed in one batch: a core NATS message (no stream) on
    ``wi.v1.recorded.hints``, for what follows workloads (the dashboard) without following every hint."""

    kind: Literal["hints_recorded"] = "hints_recorded"
    workloads: Annotated[list[HintedWorkload], Field(min_length=1, max_length=MAX_RECORDED)]
    """Each workload once, in the order of its first new hint in the batch."""
