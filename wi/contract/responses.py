"""Responses: how a workload answers a notice."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ._base import Family, MessageId, Reason, Slug, TenantMessage, Timestamp, new_message_id


class ResponseBase(TenantMessage):
    """Fields every response carries: its own id and the notice it answers."""

    family: ClassVar[Family] = Family.RESPONSE

    response_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the response."""
    notice_id: MessageId
    """The notice answered."""
    instance: Slug | None = None
    """The instance that answers, if one does."""
    reason: Reason | None = None
    """Why, in the workload's words."""

    @property
    def message_id(self) -> str:
        return self.response_id


class Ack(ResponseBase):
    """Ready now: the platform may act on the notice before its deadline."""

    kind: Literal["ack"] = "ack"


class Accept(ResponseBase):
    """Takes a cost offer."""

    kind: Literal["accept"] = "accept"


class Decline(ResponseBase):
    """Refuses a cost offer."""

    kind: Literal["decline"] = "decline"


class Defer(ResponseBase):
    """Asks the platform to wait until the given time (no later than the notice allows)."""

    kind: Literal["defer"] = "defer"
    until: Timestamp
    """The time the workload asks the platform to wait until."""


Response = Annotated[Ack | Accept | Decline | Defer, Field(discriminator="kind")]
"""Any response, told apart by its kind."""
