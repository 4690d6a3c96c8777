"""CloudEvents 1.0 in NATS binary mode: attributes as ``ce-*`` headers, the message as the JSON body."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import propagate

from wi.contract import Family, InvalidMessage, Message, Problem, parse_message

from .subjects import check_subject

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
MSG_ID_HEADER = "Nats-Msg-Id"
TRACEPARENT_HEADER = "traceparent"


@dataclass(frozen=True)
class CloudEvent:
    """The CloudEvents attributes of a message as they travelled."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str | None
    traceparent: str | None


def _traceparent() -> dict[str, str]:
    """The W3C trace context of the current span, or a fresh unsampled one when no span is active."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if TRACEPARENT_HEADER not in carrier:
        carrier[TRACEPARENT_HEADER] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return carrier


def encode(message: Message, source: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of a message in binary mode; ``Nats-Msg-Id`` equals ``ce-id``."""
    headers = {
        "ce-specversion": SPEC_VERSION,
        "ce-id": message.message_id,
        "ce-source": source,
        "ce-type": message.ce_type,
        "ce-time": message.issued_at.isoformat(),
        "ce-subject": message.ce_subject,
        "content-type": CONTENT_TYPE,
        MSG_ID_HEADER: message.message_id,
        **_traceparent(),
    }
    return headers, message.model_dump_json(exclude_none=True).encode()


def decode(
    family: Family,
    subject: str,
    headers: Mapping[str, str] | None,
    body: bytes,
    received_at: datetime | None = None,
) -> tuple[Message, CloudEvent]:
    """Validates a message and its CloudEvents headers against each other and the subject.

    ``received_at`` is the platform's clock when the message arrived (JetStream's stored time, the same
    on every redelivery and replay); ``issued_at`` may not run further ahead of it than the contract's
    clock skew. Raises InvalidMessage naming each header or field that breaks a rule.
    """
    headers = headers or {}
    problems = [
        Problem(f"header:{name}", "missing", "a v1 message carries this CloudEvents header")
        for name in ("ce-specversion", "ce-id", "ce-source", "ce-type")
        if not headers.get(name)
    ]
    if headers.get("ce-specversion", SPEC_VERSION) != SPEC_VERSION:
        problems.append(Problem("header:ce-specversion", "unsupported", f"must be {SPEC_VERSION}"))
    content_type = headers.get("content-type", CONTENT_TYPE)
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        problems.append(
            Problem("header:content-type", "unsupported", f"must be {CONTENT_TYPE}, not {content_type}")
        )
    if problems:
        raise InvalidMessage(problems)
    message = parse_message(family, body, received_at=received_at)
    if headers["ce-type"] != message.ce_type:
        problems.append(
            Problem(
                "header:ce-type", "mismatch", f"is {headers['ce-type']} but the body is {message.ce_type}"
            )
        )
    if headers["ce-id"] != message.message_id:
        problems.append(Problem("header:ce-id", "mismatch", "must equal the body's id"))
    if problems:
        raise InvalidMessage(problems)
    check_subject(message, subject)
    event = CloudEvent(
        id=headers["ce-id"],
        source=headers["ce-source"],
        type=headers["ce-type"],
        time=message.issued_at,
        subject=headers.get("ce-subject"),
        traceparent=headers.get(TRACEPARENT_HEADER),
    )
    return message, event


REPUBLISHED_SUBJECT = "Nats-Subject"
"""The header in which JetStream's republish names the subject a message was stored under."""
REPUBLISHED_AT = "Nats-Time-Stamp"
"""The header in which JetStream's republish says when it stored the message."""


def decode_republished(
    family: Family, headers: Mapping[str, str] | None, body: bytes
) -> tuple[Message, CloudEvent]:
    """``decode`` for a message JetStream republished as it stored it: checked against the subject it was
    stored under, with the stored time as the platform's clock."""
    headers = headers or {}
    try:
        stored_at: datetime | None = datetime.fromisoformat(headers.get(REPUBLISHED_AT, ""))
    except ValueError:
        stored_at = None
    return decode(family, headers.get(REPUBLISHED_SUBJECT, ""), headers, body, received_at=stored_at)
