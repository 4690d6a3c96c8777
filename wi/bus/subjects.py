"""The subject tree and the JetStream streams of the v1 bus."""

from __future__ import annotations

from dataclasses import dataclass

from wi.contract import (
    Family,
    HintBase,
    InvalidMessage,
    Message,
    PlatformEventBase,
    Problem,
    TenantMessage,
    is_slug,
)

PREFIX = "wi.v1"

SUBJECT_ROOTS: dict[Family, str] = {
    Family.HINT: f"{PREFIX}.hints",
    Family.NOTICE: f"{PREFIX}.notices",
    Family.RESPONSE: f"{PREFIX}.responses",
    Family.DEPLOYMENT: f"{PREFIX}.deployments",
    Family.EVENT: f"{PREFIX}.events",
    Family.VERDICT: f"{PREFIX}.verdicts",
}
"""Where each family's subjects start."""

DEADLETTER_ROOT = f"{PREFIX}.deadletter"
QUERY_ROOT = f"{PREFIX}.query"
ATTACH_ROOT = f"{PREFIX}.attach"
DELIVER_ROOT = f"{PREFIX}.deliver"
INBOX_ROOT = "_INBOX"
RECORDED_NOTICES = f"{PREFIX}.recorded.notices"
"""Core NATS (no stream): the registry says which notices it has just recorded (``NoticesRecorded``)."""
RECORDED_HINTS = f"{PREFIX}.recorded.hints"
"""Core NATS (no stream): the registry says whose hints it has just changed (``HintsRecorded``)."""
RECORDED_DECISIONS = f"{PREFIX}.recorded.decisions"
"""Core NATS (no stream): a service runner says what it has just decided (``DecisionsRecorded``)."""
DRILLS_ROOT = f"{PREFIX}.drills"
HEALTH_ROOT = f"{PREFIX}.health"
"""Core NATS: a platform process answers its gateway workers' health requests at ``HEALTH_ROOT.<id>``."""


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream of the bus: its name, the family it holds and how long it keeps messages."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: int = 0
    """0 keeps messages until removed by other limits; the stream is the log the registry rebuilds from."""
    max_msgs: int = -1
    """The most messages kept (-1: no limit); past it the oldest go."""
    max_bytes: int = -1
    """The most bytes kept (-1: no limit); past it the oldest go."""
    duplicate_window_s: float = 0
    """The least time a repeated Nats-Msg-Id is dropped for (the bus's setting, if longer, wins)."""
    republish_root: str | None = None
    """Where JetStream republishes each message the moment it stores it (core NATS), the stream's subject
    root replaced by this one; None: nowhere."""


STREAMS: dict[Family, StreamSpec] = {
    Family.HINT: StreamSpec("WI_HINTS", (f"{SUBJECT_ROOTS[Family.HINT]}.>",)),
    Family.NOTICE: StreamSpec(
        "WI_NOTICES", (f"{SUBJECT_ROOTS[Family.NOTICE]}.>",), republish_root=DELIVER_ROOT
    ),
    Family.RESPONSE: StreamSpec("WI_RESPONSES", (f"{SUBJECT_ROOTS[Family.RESPONSE]}.>",)),
    Family.DEPLOYMENT: StreamSpec("WI_DEPLOYMENTS", (f"{SUBJECT_ROOTS[Family.DEPLOYMENT]}.>",)),
    Family.EVENT: StreamSpec("WI_EVENTS", (f"{SUBJECT_ROOTS[Family.EVENT]}.>",), max_age_s=7 * 24 * 3600),
    Family.VERDICT: StreamSpec(
        "WI_VERDICTS", (f"{SUBJECT_ROOTS[Family.VERDICT]}.>",), max_age_s=7 * 24 * 3600
    ),
}
"""One stream a family."""

DEADLETTER_STREAM = StreamSpec(
    "WI_DEADLETTER",
    (f"{DEADLETTER_ROOT}.>",),
    max_age_s=30 * 24 * 3600,
    max_msgs=1_000_000,
    max_bytes=1024**3,
    duplicate_window_s=24 * 3600,
)
"""Where messages that cannot be applied are parked, with their reason, for 30 days: at most a million
of them or 1 GiB, the oldest going first, so no flood of bad input can fill the disk. A message parked by
each consumer of its stream is kept once (the parks of one message within a day share an id)."""

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
    """The request-reply subject on which a workload asks for its open notices (``AttachRequest``)."""
    return f"{ATTACH_ROOT}.{tenant}.{workload}"


def deliver_subjects(tenant: str, workload: str) -> str:
    """The subjects on which JetStream republishes a workload's notices as it stores them:
    ``wi.v1.deliver.<tenant>.<workload>.<kind>``."""
    return f"{DELIVER_ROOT}.{tenant}.{workload}.*"


DELIVER_GROUP = "wi-sdk"
"""The queue group a workload's processes subscribe to its deliver subjects in: they share its notices."""


def drill_start_subject(tenant: str, workload: str) -> str:
    """The request-reply subject on which a tenant starts a drill on its workload (``DrillRequest``)."""
    return f"{DRILLS_ROOT}.start.{tenant}.{workload}"


def drill_report_subject(tenant: str, workload: str) -> str:
    """The request-reply subject on which a tenant reads a drill's report (``DrillQuery``)."""
    return f"{DRILLS_ROOT}.report.{tenant}.{workload}"


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


def workload_of(subject: str) -> tuple[str, str]:
    """(tenant, workload) from a request subject ending in ``<tenant>.<workload>`` (attach, hints query).

    Raises InvalidMessage unless both are slugs: a subscription's wildcard takes any token.
    """
    *_, tenant, workload = subject.split(".")
    problems = [
        Problem(name, "pattern", "not a slug ([a-z0-9][a-z0-9-]{0,62})")
        for name, token in (("tenant", tenant), ("workload", workload))
        if not is_slug(token)
    ]
    if problems:
        raise InvalidMessage(problems)
    return tenant, workload
