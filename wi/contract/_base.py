"""Shared building blocks of the v1 contract: bounded scalar types and the model base."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

Slug = Annotated[
    str,
    StringConstraints(pattern=SLUG_PATTERN, max_length=63),
]
"""Tenant, workload, instance and resource ids. They become NATS subject tokens, so they can never hold
'.', '*', '>' or white space."""

_SLUG = re.compile(SLUG_PATTERN)


def is_slug(text: str) -> bool:
    """Whether ``text`` is a valid tenant, workload, instance or resource id."""
    return _SLUG.fullmatch(text) is not None


MessageId = Annotated[
    str,
    StringConstraints(pattern=MESSAGE_ID_PATTERN, max_length=128),
]
"""An idempotency key: 1 to 128 of A-Z a-z 0-9 . _ : - (it becomes ce-id and Nats-Msg-Id)."""

MAX_CLOCK_SKEW_S = 300
"""How far a message's issued_at may run ahead of the platform's clock when it arrives."""

Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Free text meant for people: why something happened."""

RFC_3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc_3339(value: object) -> object:
    """JSON's date-times must be RFC 3339, as the schemas say (pydantic alone takes looser forms)."""
    if not isinstance(value, str):
        return value
    parts = RFC_3339.match(value)
    if parts is not None:
        date, time, fraction, zone = parts.groups()
        micros = (fraction or "")[:6].ljust(6, "0")
        offset = "+00:00" if zone in ("Z", "z") else zone
        try:
            return datetime.fromisoformat(f"{date}T{time}.{micros}{offset}")
        except ValueError:
            pass  # e.g. month 13: the message below says what is expected
    raise PydanticCustomError(
        "datetime_format",
        "Input should be an RFC 3339 date-time with a time zone, e.g. 2026-11-22T18:00:00Z",
    )


def _whole_number(value: object) -> object:
    """JSON Schema's integer is any whole number: 120.0 is 120 (the string "120" is still no integer)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc_3339)]
"""An RFC 3339 date-time with a time zone."""

WHOLE_NUMBER = BeforeValidator(_whole_number)
"""Last in an integer field's Annotated (after its bounds, so they reach the JSON Schema): an integer as
JSON Schema means it, any whole number, 120.0 included; never a string or a boolean."""


def new_message_id() -> str:
    """A fresh random message id."""
    return uuid.uuid4().hex


def derived_id(prefix: str, source_id: str, index: int | str) -> str:
    """The id of a message made from another: fixed by its source and position, so a re-send is the same.

    Readable (``evict-<source>-0``) while that fits a message id's 128 characters, else a UUID derived
    from the same parts.
    """
    readable = f"{prefix}-{source_id}-{index}"
    return readable if len(readable) <= 128 else f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, readable)}"


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
    VERDICT = "verdict"


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


def _require_kind(schema: dict[str, Any]) -> None:
    """A message names its kind: ``parse_message`` (and a discriminated union) refuses one that does not."""
    _describe_kind(schema)
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


class Message(ContractModel):
    """Base of every message that travels on the bus on its own."""

    model_config = ConfigDict(json_schema_extra=_require_kind)
    family: ClassVar[Family]
    kind: str
    issued_at: Timestamp = Field(
        default_factory=utc_now,
        description="When the sender issued the message (now, if absent); at most "
        f"{MAX_CLOCK_SKEW_S} s ahead of the platform's clock when it arrives.",
    )

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
