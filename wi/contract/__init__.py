"""The v1 contract of Workload Intelligence: every message as a pydantic model.

Families (each its own stream and subject tree):

- hints, workload to platform: Priority, Evictability, LatencyTolerance, DelayTolerance, Availability,
  Region, Scaling, Migration, Cost, and ClearHint to remove one;
- notices, platform to workload: Eviction, Maintenance, PowerEvent, Resize, CostOffer, Reconfiguration,
  Placement;
- responses, workload to platform: Ack, Accept, Decline, Defer;
- deployments, workload to platform: DeploymentRequest, DeploymentScale, DeploymentEnd;
- platform events, telemetry or an operator to services: CapacityPressure, PowerCap, ThermalEmergency,
  SpareCapacity, MaintenancePlanned, PriceUpdate, EndpointLoad;
- queries, request-reply: HintsQuery answered by HintsView or QueryError;
- attaching to notice delivery over NATS, request-reply: AttachRequest answered by AttachReply (the open
  notices, a page at a time) or AttachError;
- drills, a tenant's test notice to its own workload: DrillRequest and DrillQuery answered by DrillReport
  or DrillError;
- what the platform tells itself on core NATS: NoticesRecorded, HintsRecorded, DecisionsRecorded.

Every model rejects unknown fields; ``parse_message`` parses untrusted JSON (depth-limited, strict
types, issued_at bounded by the platform's clock) and raises ``InvalidMessage`` whose ``problems`` name
the field and the rule of each violation.
"""

from ._base import (
    MAX_CLOCK_SKEW_S,
    MESSAGE_ID_PATTERN,
    SLUG_PATTERN,
    ContractModel,
    Family,
    Message,
    MessageId,
    Slug,
    TenantMessage,
    derived_id,
    is_slug,
    new_message_id,
    utc_now,
)
from ._catalog import (
    MAX_JSON_DEPTH,
    MESSAGE_TYPES,
    InvalidMessage,
    Problem,
    check_clock,
    parse_message,
    problems_from,
)
from .attach import ATTACH_ANSWER, ATTACH_PAGE, AttachError, AttachReply, AttachRequest
from .decisions import DecisionRecorded, DecisionsRecorded, SentNotice
from .deployments import DeploymentEnd, DeploymentMessage, DeploymentRequest, DeploymentScale
from .drills import DRILL_ANSWER, DrillError, DrillNoticeKind, DrillQuery, DrillReport, DrillRequest, is_drill
from .events import (
    CapacityPressure,
    EndpointLoad,
    MaintenancePlanned,
    PlatformEvent,
    PlatformEventBase,
    PowerCap,
    PriceUpdate,
    SpareCapacity,
    ThermalEmergency,
)
from .hints import (
    Availability,
    ClearHint,
    Cost,
    DelayTolerance,
    Evictability,
    Hint,
    HintBase,
    HintKind,
    LatencyClass,
    LatencyTolerance,
    Migration,
    Priority,
    PriorityLevel,
    Region,
    Scaling,
)
from .notices import (
    CostOffer,
    EndpointConfig,
    Eviction,
    InstancePlacement,
    Maintenance,
    MaintenanceType,
    Notice,
    NoticeBase,
    NoticeState,
    Placement,
    Pool,
    PowerEvent,
    PowerEventType,
    Reconfiguration,
    Resize,
    ResponseAction,
)
from .queries import HintsQuery, HintsView, QueryError, QueryProblem
from .responses import Accept, Ack, Decline, Defer, Response, ResponseBase
from .verdicts import (
    HintedWorkload,
    HintsRecorded,
    NoticeKind,
    NoticeRecorded,
    NoticesRecorded,
    RefusalRule,
    Verdict,
)

__all__ = [
    "ATTACH_ANSWER",
    "ATTACH_PAGE",
    "DRILL_ANSWER",
    "MAX_CLOCK_SKEW_S",
    "MAX_JSON_DEPTH",
    "MESSAGE_ID_PATTERN",
    "MESSAGE_TYPES",
    "SLUG_PATTERN",
    "Accept",
    "Ack",
    "AttachError",
    "AttachReply",
    "AttachRequest",
    "Availability",
    "CapacityPressure",
    "ClearHint",
    "ContractModel",
    "Cost",
    "CostOffer",
    "DecisionRecorded",
    "DecisionsRecorded",
    "Decline",
    "Defer",
    "DelayTolerance",
    "DeploymentEnd",
    "DeploymentMessage",
    "DeploymentRequest",
    "DeploymentScale",
    "DrillError",
    "DrillNoticeKind",
    "DrillQuery",
    "DrillReport",
    "DrillRequest",
    "EndpointConfig",
    "EndpointLoad",
    "Evictability",
    "Eviction",
    "Family",
    "Hint",
    "HintBase",
    "HintKind",
    "HintedWorkload",
    "HintsQuery",
    "HintsRecorded",
    "HintsView",
    "InstancePlacement",
    "InvalidMessage",
    "LatencyClass",
    "LatencyTolerance",
    "Maintenance",
    "MaintenancePlanned",
    "MaintenanceType",
    "Message",
    "MessageId",
    "Migration",
    "Notice",
    "NoticeBase",
    "NoticeKind",
    "NoticeRecorded",
    "NoticeState",
    "NoticesRecorded",
    "Placement",
    "PlatformEvent",
    "PlatformEventBase",
    "Pool",
    "PowerCap",
    "PowerEvent",
    "PowerEventType",
    "PriceUpdate",
    "Priority",
    "PriorityLevel",
    "Problem",
    "QueryError",
    "QueryProblem",
    "Reconfiguration",
    "RefusalRule",
    "Region",
    "Resize",
    "Response",
    "ResponseAction",
    "ResponseBase",
    "Scaling",
    "SentNotice",
    "Slug",
    "SpareCapacity",
    "TenantMessage",
    "ThermalEmergency",
    "Verdict",
    "check_clock",
    "derived_id",
    "is_drill",
    "is_slug",
    "new_message_id",
    "parse_message",
    "problems_from",
    "utc_now",
]
