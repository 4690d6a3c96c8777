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
from .delivery import DELIVER_GROUP, NoticeDelivery, ensure_notice_delivery, notice_consumer_name
from .subjects import (
    ALL_STREAMS,
    DEADLETTER_STREAM,
    STREAMS,
    SUBJECT_ROOTS,
    StreamSpec,
    attach_subject,
    check_subject,
    deadletter_subject,
    deliver_subject,
    hints_query_subject,
    subject_for,
    tenant_inbox,
    workload_subjects,
)

__all__ = [
    "ALL_STREAMS",
    "DEADLETTER_CONSUMER",
    "DEADLETTER_REASON",
    "DEADLETTER_STREAM",
    "DEADLETTER_STREAM_SEQ",
    "DEADLETTER_SUBJECT",
    "DELIVER_GROUP",
    "STREAMS",
    "SUBJECT_ROOTS",
    "Bus",
    "CloudEvent",
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Handler",
    "NoticeDelivery",
    "Published",
    "Rejected",
    "StreamSpec",
    "attach_subject",
    "check_subject",
    "deadletter_subject",
    "decode",
    "deliver_subject",
    "encode",
    "ensure_notice_delivery",
    "hints_query_subject",
    "notice_consumer_name",
    "subject_for",
    "tenant_inbox",
    "workload_subjects",
]
