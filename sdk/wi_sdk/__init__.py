"""The workload SDK: a workload's only dependency on WI (the base install; no FastAPI or SQLModel).

``WorkloadClient`` sends hints and deployment requests, runs handlers for notices and drills its own
notice handling, over NATS or HTTP.
The v1 hint and notice models are re-exported for convenience. Errors: see ``wi_sdk._errors``.
``wi_sdk.imds`` (the ``imds`` extra) serves a workload's notices in the clouds' metadata formats.
"""

from wi.contract import (
    Availability,
    Cost,
    CostOffer,
    DelayTolerance,
    DrillReport,
    Evictability,
    Eviction,
    LatencyTolerance,
    Maintenance,
    Migration,
    Placement,
    PowerEvent,
    Priority,
    Reconfiguration,
    Region,
    Resize,
    Scaling,
)

from ._client import Received, WorkloadClient
from ._errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TransportError,
    WIError,
)
from ._http import HttpTransport
from ._nats import NatsTransport
from ._sync import SyncWorkloadClient
from ._transport import Sent, Transport

__all__ = [
    "AuthError",
    "Availability",
    "ConflictError",
    "Cost",
    "CostOffer",
    "DelayTolerance",
    "DrillReport",
    "Evictability",
    "Eviction",
    "ForbiddenError",
    "HttpTransport",
    "InvalidInputError",
    "LatencyTolerance",
    "Maintenance",
    "Migration",
    "NatsTransport",
    "NotFoundError",
    "Placement",
    "PowerEvent",
    "Priority",
    "Received",
    "Reconfiguration",
    "Region",
    "Resize",
    "Scaling",
    "Sent",
    "SyncWorkloadClient",
    "Transport",
    "TransportError",
    "WIError",
    "WorkloadClient",
]
