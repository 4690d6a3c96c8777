"""The v1 bus on NATS JetStream: subjects, streams, CloudEvents binary mode and durable consumers.

Errors: ``wi.contract.InvalidMessage`` for a message that breaks the contract (parked on the dead-letter
stream by consumers); ``Rejected``, raised by a handler, for a valid message that cannot be applied
(parked too); ``Interrupted``, raised by a handler when its consumer stops, releases the message for
redelivery; any other exception in a handler is retried with backoff, then parked. ``Supervisor`` restarts
a consumer loop that fails anyway.
"""

from ._bus import (
    DEADLETTER_CONSUMER,
    DEADLETTER_REASON,
    DEADLETTER_STREAM_SEQ,
    DEADLETTER_SUBJECT,
    DEADLETTER_TRUNCATED,
    Batch,
    BatchHandler,
    Bus,
    Consumer,
    ConsumerSpec,
    Delivery,
    Handler,
    Interrupted,
    Published,
    Rejected,
    close_nats,
    connect_nats,
)
from .cloudevents import CloudEvent, decode, decode_republished, encode
from .replies import BatchedResponder, RequestsHandler
from .subjects import (
    ALL_STREAMS,
    DEADLETTER_STREAM,
    DELIVER_GROUP,
    RECORDED_DECISIONS,
    RECORDED_NOTICES,
    STREAMS,
    SUBJECT_ROOTS,
    StreamSpec,
    attach_subject,
    check_subject,
    deadletter_subject,
    deliver_subjects,
    drill_report_subject,
    drill_start_subject,
    hints_query_subject,
    subject_for,
    tenant_inbox,
    workload_subjects,
)
from .supervisor import Loop, LoopHealth, LoopState, Supervisor

__all__ = [
    "ALL_STREAMS",
    "DEADLETTER_CONSUMER",
    "DEADLETTER_REASON",
    "DEADLETTER_STREAM",
    "DEADLETTER_STREAM_SEQ",
    "DEADLETTER_SUBJECT",
    "DEADLETTER_TRUNCATED",
    "DELIVER_GROUP",
    "RECORDED_DECISIONS",
    "RECORDED_NOTICES",
    "STREAMS",
    "SUBJECT_ROOTS",
    "Batch",
    "BatchHandler",
    "BatchedResponder",
    "Bus",
    "CloudEvent",
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Handler",
    "Interrupted",
    "Loop",
    "LoopHealth",
    "LoopState",
    "Published",
    "Rejected",
    "RequestsHandler",
    "StreamSpec",
    "Supervisor",
    "attach_subject",
    "check_subject",
    "close_nats",
    "connect_nats",
    "deadletter_subject",
    "decode",
    "decode_republished",
    "deliver_subjects",
    "drill_report_subject",
    "drill_start_subject",
    "encode",
    "hints_query_subject",
    "subject_for",
    "tenant_inbox",
    "workload_subjects",
]
