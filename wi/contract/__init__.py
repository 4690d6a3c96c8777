"""The v1 contract of Workload Intelligence: every message as a pydantic model.

Families (each its own stream and subject tree):

- hints, workload to platform: Priority, Evictability, LatencyTolerance, DelayTolerance, Availability,
  Region, Scaling, Migration, Cost, and ClearHint to remove one;
- notices, platform to workload: Eviction, Maintenance, PowerEvent, Resize, CostOffer, Reconfiguration,
  Placement;
- responses, workload to platform: Ack, Accept, Decline, Defer;
- deployment requests, workload to platform: DeploymentRequest;
- platform events, telemetry or an operator to services: CapacityPressure, PowerCap, ThermalEmergency,
  SpareCapacity, MaintenancePlanned, PriceUpdate, EndpointLoad;
- queries, request-reply: HintsQuery answered by HintsView or QueryError.

Every model rejects unknown fields; ``parse_message`` raises ``InvalidMessage`` whose ``problems`` name
the field and the rule of each violation.
"""

from ._base import (
    ContractModel,
    Family,
    Message,
    MessageId,
    Slug,
    TenantMessage,
    new_message_id,
    utc_now,
)
from ._catalog import MESSAGE_TYPES, InvalidMessage, Problem, message_type, parse_message, problems_from
from .deployments import DeploymentRequest
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

__all__ = [
    "MESSAGE_TYPES",
    "Accept",
    "Ack",
    "Availability",
    "CapacityPressure",
    "ClearHint",
    "ContractModel",
    "Cost",
    "CostOffer",
    "Decline",
    "Defer",
    "DelayTolerance",
    "DeploymentRequest",
    "EndpointConfig",
    "EndpointLoad",
    "Evictability",
    "Eviction",
    "Family",
    "Hint",
    "HintBase",
    "HintKind",
    "HintsQuery",
    "HintsView",
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
    "NoticeState",
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
    "Region",
    "Resize",
    "Response",
    "ResponseAction",
    "ResponseBase",
    "Scaling",
    "Slug",
    "SpareCapacity",
    "TenantMessage",
    "ThermalEmergency",
    "message_type",
    "new_message_id",
    "parse_message",
    "problems_from",
    "utc_now",
]
