"""The v1 bus on NATS JetStream: subjects, streams, CloudEvents binary mode and durable consumers.

Errors: ``wi.contract.InvalidMessage`` for a message that breaks the contract (parked on the dead-letter
stream by consumers); ``Rejected``, raised by a handler, for a valid message that cannot be applied
(parked too); any other exception in a handler is retried with backoff, then parked.
"""

from ._bus import (
    DEADLETTER_CONSUMER,
    DEADLETTER_REASON,
    DEADLETTER_STREAM_SEQ,
    DEADLETTER_SUBJECT,
    Bus,
    Consumer,
    ConsumerSpec,
    Delivery,
    Handler,
    Published,
    Rejected,
)
from .cloudevents import CloudEvent, decode, encode
from .subjects import (
    ALL_STREAMS,
    DEADLETTER_STREAM,
    STREAMS,
    SUBJECT_ROOTS,
    StreamSpec,
    check_subject,
    deadletter_subject,
    hints_query_subject,
    subject_for,
    workload_subjects,
)

__all__ = [
    "ALL_STREAMS",
    "DEADLETTER_CONSUMER",
    "DEADLETTER_REASON",
    "DEADLETTER_STREAM",
    "DEADLETTER_STREAM_SEQ",
    "DEADLETTER_SUBJECT",
    "STREAMS",
    "SUBJECT_ROOTS",
    "Bus",
    "CloudEvent",
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Handler",
    "Published",
    "Rejected",
    "StreamSpec",
    "check_subject",
    "deadletter_subject",
    "decode",
    "encode",
    "hints_query_subject",
    "subject_for",
    "workload_subjects",
]
