"""Drills: a tenant sends a test notice to one of its own workloads and reads how the workload answered.

Like a cloud's fault-injection or simulate-maintenance call: the platform sends an eviction, maintenance
or power event marked ``drill`` (``NoticeBase.drill``) to the workload, which answers it as it would a
real one; no platform service acts on it. The tenant is the caller's (the token's, or the NATS subject its
permissions allow), never one named in a body.

Over HTTP: ``POST /v1/workloads/{workload}/drills`` with a ``DrillRequest``, then
``GET /v1/workloads/{workload}/drills/{drill_id}`` for the ``DrillReport``. Over NATS (request-reply,
core NATS): a ``DrillRequest`` on ``wi.v1.drills.start.<tenant>.<workload>`` and a ``DrillQuery`` on
``wi.v1.drills.report.<tenant>.<workload>``; either is answered with a ``DrillReport`` or a
``DrillError``. A report is read from the registry's records of the notice and its responses, so any
gateway process answers it, across restarts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from ._base import WHOLE_NUMBER, ContractModel, Message, MessageId, Slug, Timestamp, new_message_id
from .notices import ONE_DAY_S, NoticeBase, NoticeState, ResponseAction
from .verdicts import Verdict

DrillNoticeKind = Literal["eviction", "maintenance", "power_event"]
"""The notices a drill can send."""
MAX_DRILL_ERROR_CHARS = 2000
"""The longest ``DrillError.error``."""
_SECONDS = Field(ge=-2 * ONE_DAY_S, le=2 * ONE_DAY_S)
"""A drill's durations and margins: within its notice and a deferral (each at most a day)."""


class DrillRequest(ContractModel):
    """Asks the platform to send a test notice to one of the caller's workloads."""

    kind: Literal["drill_request"] = "drill_request"
    drill_id: MessageId = Field(default_factory=new_message_id)
    """The drill's id (one is made if absent); asking again with it sends nothing more."""
    notice_kind: DrillNoticeKind = "eviction"
    """The notice to send: eviction, maintenance or power_event."""
    notice_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER] = 120
    """The notice's lead time: its deadline is this many seconds after the request."""
    target: Slug = "drill"
    """The instance (eviction, maintenance) or power domain (power_event) the notice names."""


class DrillQuery(ContractModel):
    """Asks for the report of a drill the caller started (over NATS; HTTP reads it with GET)."""

    kind: Literal["drill_query"] = "drill_query"
    drill_id: MessageId
    """The drill."""


class DrillReport(ContractModel):
    """How a drill went so far: when the notice reached the workload and how and when it answered."""

    kind: Literal["drill_report"] = "drill_report"
    drill_id: MessageId
    """The drill."""
    tenant: Slug
    """The tenant that asked for it."""
    workload: Slug
    """The workload that got the notice."""
    notice_id: MessageId
    """The test notice."""
    notice_kind: DrillNoticeKind
    """Its kind."""
    requested_at: Timestamp
    """When the platform took the request (the notice's issued_at)."""
    deadline: Timestamp
    """The notice's deadline: the request plus its lead time."""
    delivered_after_s: Annotated[float, _SECONDS] | None = None
    """Seconds from the request until the registry recorded the notice, from when every channel (NATS,
    HTTP long polls and event streams) hands it out; none until then (and for a notice recorded before
    the registry kept the time)."""
    answer: ResponseAction | None = None
    """The workload's first accepted answer (ack or defer); none so far."""
    answered_after_s: Annotated[float, _SECONDS] | None = None
    """Seconds from the delivery until the bus received that answer (the time the registry judged it as of;
    0 if it came before the registry recorded the notice); none without one."""
    before_deadline_s: Annotated[float, _SECONDS] | None = None
    """How long before the deadline the bus received the answer; none without one."""
    state: NoticeState = NoticeState.PENDING
    """Where the notice stands now (expired: the deadline passed without an ack)."""
    deferred_until: Timestamp | None = None
    """The deferral in force, after a defer."""
    done: bool = False
    """The workload answered, or the deadline passed: the report will not change (but for a later ack of
    a deferred notice)."""


class DrillError(ContractModel):
    """A drill request or query that could not be served, for people."""

    kind: Literal["drill_error"] = "drill_error"
    error: Annotated[str, Field(min_length=1, max_length=MAX_DRILL_ERROR_CHARS)]
    """What went wrong."""


DRILL_ANSWER: TypeAdapter[DrillReport | DrillError] = TypeAdapter(
    Annotated[DrillReport | DrillError, Field(discriminator="kind")]
)
"""Parses the reply to a drill request or query: ``DRILL_ANSWER.validate_json(data)``."""


def is_drill(message: Message) -> bool:
    """Whether a message is a drill's notice, or a verdict on one: no platform service acts on those."""
    return isinstance(message, NoticeBase | Verdict) and message.drill is True
