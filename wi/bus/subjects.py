"""The subject tree and the JetStream streams of the v1 bus."""

from __future__ import annotations

from dataclasses import dataclass

from wi.contract import Family, HintBase, InvalidMessage, Message, PlatformEventBase, Problem, TenantMessage

PREFIX = "wi.v1"

SUBJECT_ROOTS: dict[Family, str] = {
    Family.HINT: f"{PREFIX}.hints",
    Family.NOTICE: f"{PREFIX}.notices",
    Family.RESPONSE: f"{PREFIX}.responses",
    Family.DEPLOYMENT: f"{PREFIX}.deployments",
    Family.EVENT: f"{PREFIX}.events",
}
"""Where each family's subjects start."""

DEADLETTER_ROOT = f"{PREFIX}.deadletter"
QUERY_ROOT = f"{PREFIX}.query"
ATTACH_ROOT = f"{PREFIX}.attach"
DELIVER_ROOT = f"{PREFIX}.deliver"
INBOX_ROOT = "_INBOX"


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream of the bus: its name, the family it holds and how long it keeps messages."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: int = 0
    """0 keeps messages until removed by other limits; the stream is the log the registry rebuilds from."""


STREAMS: dict[Family, StreamSpec] = {
    Family.HINT: StreamSpec("WI_HINTS", (f"{SUBJECT_ROOTS[Family.HINT]}.>",)),
    Family.NOTICE: StreamSpec("WI_NOTICES", (f"{SUBJECT_ROOTS[Family.NOTICE]}.>",)),
    Family.RESPONSE: StreamSpec("WI_RESPONSES", (f"{SUBJECT_ROOTS[Family.RESPONSE]}.>",)),
    Family.DEPLOYMENT: StreamSpec("WI_DEPLOYMENTS", (f"{SUBJECT_ROOTS[Family.DEPLOYMENT]}.>",)),
    Family.EVENT: StreamSpec("WI_EVENTS", (f"{SUBJECT_ROOTS[Family.EVENT]}.>",), max_age_s=7 * 24 * 3600),
}
"""One stream a family."""

DEADLETTER_STREAM = StreamSpec("WI_DEADLETTER", (f"{DEADLETTER_ROOT}.>",), max_age_s=30 * 24 * 3600)
"""Where messages that cannot be applied are parked, with their reason, for 30 days."""

ALL_STREAMS: tuple[StreamSpec, ...] = (*STREAMS.values(), DEADLETTER_STREAM)


def subject_for(message: Message) -> str:
    """The subject a message is published on."""
    root = SUBJECT_ROOTS[message.family]
    if isinstance(message, PlatformEventBase):
        return f"{root}.{message.kind}"
    assert isinstance(message, TenantMessage)
    if isinstance(message, HintBase):
        return f"{root}.{message.tenant}.{message.workload}.{message.subject_kind}"
    if message.family is Family.NOTICE:
        return f"{root}.{message.tenant}.{message.workload}.{message.kind}"
    return f"{root}.{message.tenant}.{message.workload}"


def workload_subjects(family: Family, tenant: str, workload: str = "*") -> str:
    """A subject filter for one tenant's (and optionally one workload's) messages of a family."""
    root = SUBJECT_ROOTS[family]
    if family in (Family.HINT, Family.NOTICE):
        return f"{root}.{tenant}.{workload}.*"
    return f"{root}.{tenant}.{workload}"


def deadletter_subject(stream: str) -> str:
    """Where messages consumed from a stream are parked."""
    return f"{DEADLETTER_ROOT}.{stream.lower()}"


def attach_subject(tenant: str, workload: str) -> str:
    """The request-reply subject on which a workload asks for its notice delivery to be set up."""
    return f"{ATTACH_ROOT}.{tenant}.{workload}"


def deliver_subject(tenant: str, workload: str) -> str:
    """Where a workload's durable notice consumer pushes its notices."""
    return f"{DELIVER_ROOT}.{tenant}.{workload}"


def tenant_inbox(tenant: str) -> str:
    """The reply-inbox prefix of a tenant's connections (its NATS permissions allow only this one)."""
    return f"{INBOX_ROOT}.{tenant}"


def hints_query_subject(tenant: str, workload: str) -> str:
    """The request-reply subject that answers a workload's effective hints."""
    return f"{QUERY_ROOT}.hints.{tenant}.{workload}"


def check_subject(message: Message, subject: str) -> None:
    """Raises InvalidMessage unless the message belongs on the subject it arrived on.

    NATS permissions are granted by subject; this check makes the body agree with them, so a tenant
    cannot write another tenant's data by naming it in the body.
    """
    expected = subject_for(message)
    if subject != expected:
        raise InvalidMessage(
            [
                Problem(
                    "subject",
                    "subject_mismatch",
                    f"a message with this body belongs on {expected}, not {subject}",
                )
            ]
        )
