"""Bodies of the HTTP gateway's requests and replies that are not bus messages themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ._base import MessageId, Reason, Slug, Timestamp
from .deployments import MAX_INSTANCES
from .notices import Notice, NoticeState, ResponseAction
from .queries import HintsView

MAX_HINTS_PER_REQUEST = 100


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Accepted(_Body):
    """The ids of what was accepted onto the bus, and the stream sequence of the last of them."""

    ids: list[str]
    """hint_id, request_id, response_id, event_id or notice_id of each message, in order."""
    seq: int
    """The stream sequence of the last message; pass it as after_seq to read your own writes."""


class ResponseRequest(_Body):
    """A workload's answer to a notice."""

    action: ResponseAction
    """ack, accept, decline or defer."""
    until: Timestamp | None = None
    """defer only: the time to wait until."""
    reason: Reason | None = None
    """Why, in the workload's words."""
    instance: Slug | None = None
    """The instance that answers, if one does."""
    response_id: MessageId | None = None
    """An idempotency key; one is made if absent."""


class ScaleRequest(_Body):
    """How many instances a deployment runs from now on."""

    instances: Annotated[int, Field(ge=0, le=MAX_INSTANCES)]
    """The instances wanted: more are placed, the newest go."""
    request_id: MessageId | None = None
    """An idempotency key; one is made if absent."""


class ResponseAccepted(_Body):
    """A response the registry took, and the state it moved the notice to."""

    response_id: str
    """The response's id."""
    state: NoticeState
    """The notice's state after the response (before it, if ``judged`` is false)."""
    judged: bool = True
    """False if the registry had not judged the response within a few seconds (or it was sent before,
    with this id): it is on the bus and will be judged; read the notice to see how."""


class NoticeDelivery(_Body):
    """A notice as a workload reads it: the notice, its state, its deadline and its cursor."""

    cursor: int
    """Its position in the notices stream; pass the last one as ``after`` to read on."""
    state: NoticeState
    """pending, acked, accepted, declined, deferred or expired."""
    deadline: datetime | None
    """When the platform acts; respond before it."""
    notice: Notice
    """The notice itself."""


class NoticePage(_Body):
    """Notices for one workload and the cursor to read on from."""

    notices: list[NoticeDelivery]
    """The notices, in stream order."""
    next_cursor: int
    """Pass as ``after`` to get only newer notices."""


class TenantHints(_Body):
    """The effective hints of a tenant's workloads."""

    tenant: Slug
    """The tenant."""
    workloads: Annotated[list[HintsView], Field(max_length=100_000)]
    """One view per workload that has hints in effect."""
