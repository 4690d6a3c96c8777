"""Shared building blocks of the v1 contract: bounded scalar types and the model base."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, max_length=63),
]
"""Tenant, workload, instance and resource ids. They become NATS subject tokens, so they can never hold
'.', '*', '>' or white space."""

MessageId = Annotated[
    str,
    StringConstraints(pattern=MESSAGE_ID_PATTERN, max_length=128),
]
"""An idempotency key: 1 to 128 of A-Z a-z 0-9 . _ : - (it becomes ce-id and Nats-Msg-Id)."""

Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Free text meant for people: why something happened."""

Timestamp = AwareDatetime
"""An RFC 3339 date-time with a time zone."""


def new_message_id() -> str:
    """A fresh random message id."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Family(StrEnum):
    """The families of v1 messages; each has its own stream and subject tree."""

    HINT = "hint"
    NOTICE = "notice"
    RESPONSE = "response"
    DEPLOYMENT = "deployment"
    EVENT = "event"


def _describe_kind(schema: dict[str, Any]) -> None:
    kind = schema.get("properties", {}).get("kind")
    if kind is not None and "const" in kind:
        kind.setdefault("description", f"Always {kind['const']!r}: the type of the message.")


class ContractModel(BaseModel):
    """Base of every v1 model: unknown fields are rejected and instances are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra=_describe_kind,
    )


class Message(ContractModel):
    """Base of every message that travels on the bus on its own."""

    family: ClassVar[Family]
    kind: str
    issued_at: Timestamp = Field(default_factory=utc_now)
    """When the sender issued the message."""

    @property
    def message_id(self) -> str:
        """The message's idempotency key; the bus uses it as ce-id and Nats-Msg-Id."""
        raise NotImplementedError

    @property
    def ce_type(self) -> str:
        """The CloudEvents type, e.g. ``wi.v1.hint.evictability``."""
        return f"wi.v1.{self.family}.{self.kind}"

    @property
    def ce_subject(self) -> str:
        """The CloudEvents subject: what the message is about within its source."""
        raise NotImplementedError


class TenantMessage(Message):
    """A message that belongs to one tenant's workload."""

    tenant: Slug
    """The tenant that owns the workload."""
    workload: Slug
    """The workload, unique within its tenant."""

    @property
    def ce_subject(self) -> str:
        instance = getattr(self, "instance", None)
        return f"{self.workload}/{instance}" if instance else self.workload
