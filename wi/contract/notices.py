"""Notices: what the platform tells a workload, each with its deadline and the responses it allows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from ._base import (
    WHOLE_NUMBER,
    ContractModel,
    Family,
    MessageId,
    Reason,
    Slug,
    TenantMessage,
    Timestamp,
    new_message_id,
)
from .deployments import MAX_INSTANCES
from .hints import Hint

ONE_DAY_S = 24 * 3600


class ResponseAction(StrEnum):
    """How a workload answers a notice."""

    ACK = "ack"
    """Ready now: the platform may act before the deadline."""
    ACCEPT = "accept"
    """Takes the offer."""
    DECLINE = "decline"
    """Refuses the offer."""
    DEFER = "defer"
    """Asks the platform to wait until a later time."""


class NoticeState(StrEnum):
    """Where a notice stands."""

    PENDING = "pending"
    ACKED = "acked"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    DEFERRED = "deferred"
    EXPIRED = "expired"


class NoticeBase(TenantMessage):
    """Fields every notice carries: its id and the responses it allows."""

    family: ClassVar[Family] = Family.NOTICE
    permitted_responses: ClassVar[frozenset[ResponseAction]] = frozenset({ResponseAction.ACK})
    """The responses this kind of notice can ever allow."""

    notice_id: MessageId = Field(default_factory=new_message_id)
    """The notice's id; responses name it."""
    responses: Annotated[list[ResponseAction], Field(max_length=4)] = Field(
        default_factory=lambda: [ResponseAction.ACK]
    )
    """The responses the workload may send to this notice."""
    drill: Literal[True] | None = None
    """true on a test the tenant asked for (``wi drill``): the workload answers it as it would a real one,
    and no platform service acts on it or on the answer. Absent on every other notice."""

    @property
    def message_id(self) -> str:
        return self.notice_id

    @property
    def deadline(self) -> datetime | None:
        """The moment the platform acts; a response after it is too late. None where none applies."""
        return None

    @model_validator(mode="after")
    def _responses_permitted(self) -> Self:
        refused = set(self.responses) - self.permitted_responses
        if refused:
            allowed = ", ".join(sorted(self.permitted_responses))
            raise ValueError(
                f"responses: a {self.kind} notice allows only {allowed}, not {', '.join(sorted(refused))}"
            )
        if len(set(self.responses)) != len(self.responses):
            raise ValueError("responses: must not repeat an action")
        return self


class Eviction(NoticeBase):
    """The platform will evict an instance no earlier than not_before (ack to let it go now)."""

    kind: Literal["eviction"] = "eviction"
    instance: Slug
    """The instance to be evicted."""
    not_before: Timestamp
    """The eviction happens no earlier than this, unless the workload acks first."""
    reason: Reason
    """Why the platform evicts."""
    action: Literal["deallocate", "delete"] = "deallocate"
    """deallocate keeps the disks; delete removes the instance."""

    @property
    def deadline(self) -> datetime:
        return self.not_before


class MaintenanceType(StrEnum):
    """What maintenance does to an instance."""

    REBOOT = "reboot"
    REDEPLOY = "redeploy"
    LIVE_MIGRATION = "live_migration"
    FREEZE = "freeze"


class Maintenance(NoticeBase):
    """Planned maintenance of an instance's host; deferrable up to deferrable_until when that is set."""

    permitted_responses: ClassVar[frozenset[ResponseAction]] = frozenset(
        {ResponseAction.ACK, ResponseAction.DEFER}
    )

    kind: Literal["maintenance"] = "maintenance"
    instance: Slug
    """The instance affected."""
    type: MaintenanceType
    """reboot, redeploy, live_migration or freeze."""
    not_before: Timestamp
    """Maintenance starts no earlier than this, unless the workload acks first."""
    expected_duration_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER]
    """How long the instance is expected to be affected, in seconds."""
    deferrable_until: Timestamp | None = None
    """The latest time the workload may defer the maintenance to; none if it cannot be deferred."""

    @property
    def deadline(self) -> datetime:
        return self.not_before

    @model_validator(mode="after")
    def _deferral_consistent(self) -> Self:
        if self.deferrable_until is not None and self.deferrable_until < self.not_before:
            raise ValueError("deferrable_until: must not be earlier than not_before")
        if ResponseAction.DEFER in self.responses and self.deferrable_until is None:
            raise ValueError("responses: defer needs deferrable_until")
        return self


class PowerEventType(StrEnum):
    """Why the platform limits power."""

    POWER_CAP = "power_cap"
    THERMAL = "thermal"
    POWER_EMERGENCY = "power_emergency"


class PowerEvent(NoticeBase):
    """A power or thermal event in the workload's power domain that slows it down for a while."""

    kind: Literal["power_event"] = "power_event"
    power_domain: Slug
    """The power domain (e.g. a row or rack) affected."""
    type: PowerEventType
    """power_cap, thermal or power_emergency."""
    cap_watts: Annotated[int, Field(ge=1, le=10_000_000), WHOLE_NUMBER] | None = None
    """The power cap applied to the workload's servers, in watts."""
    gpu_frequency_mhz: Annotated[int, Field(ge=100, le=5_000), WHOLE_NUMBER] | None = None
    """The GPU frequency the workload's GPUs are capped at, in MHz."""
    starts_at: Timestamp
    """When the limit takes effect."""
    expected_duration_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER] | None = None
    """How long the event is expected to last, in seconds; none if unknown."""
    expected_slowdown_pct: Annotated[float, Field(ge=0, le=100)] = 0
    """The expected slowdown of the workload, in percent."""

    @property
    def deadline(self) -> datetime:
        return self.starts_at

    @model_validator(mode="after")
    def _names_a_limit(self) -> Self:
        if self.cap_watts is None and self.gpu_frequency_mhz is None:
            raise ValueError("cap_watts: give cap_watts or gpu_frequency_mhz (or both)")
        return self


class Resize(NoticeBase):
    """A Harvest VM instance grows or shrinks to the given size at effective_at."""

    kind: Literal["resize"] = "resize"
    instance: Slug
    """The instance resized."""
    cores: Annotated[int, Field(ge=1, le=1024), WHOLE_NUMBER]
    """The new number of cores."""
    memory_gb: Annotated[float, Field(gt=0, le=24_576)]
    """The new memory, in GB."""
    effective_at: Timestamp
    """When the new size takes effect."""

    @property
    def deadline(self) -> datetime:
        return self.effective_at


class CostOffer(NoticeBase):
    """A discount in exchange for a committed hint change; accept before expires_at, or decline."""

    permitted_responses: ClassVar[frozenset[ResponseAction]] = frozenset(
        {ResponseAction.ACCEPT, ResponseAction.DECLINE}
    )

    kind: Literal["cost_offer"] = "cost_offer"
    responses: Annotated[list[ResponseAction], Field(max_length=4)] = Field(
        default_factory=lambda: [ResponseAction.ACCEPT, ResponseAction.DECLINE]
    )
    """The responses the workload may send: accept and decline."""
    offer_id: MessageId
    """The offer's id, stable across re-sends of the same offer."""
    commit: Annotated[list[Hint], Field(min_length=1, max_length=10)]
    """The hints the workload commits to if it accepts; the platform applies them on accept."""
    discount_pct: Annotated[float, Field(gt=0, le=100)]
    """The discount on the workload's price, in percent."""
    expires_at: Timestamp
    """The offer cannot be accepted after this."""

    @property
    def deadline(self) -> datetime:
        return self.expires_at

    @model_validator(mode="after")
    def _commit_is_ours(self) -> Self:
        for hint in self.commit:
            if (hint.tenant, hint.workload) != (self.tenant, self.workload):
                raise ValueError("commit: every hint must belong to the offer's tenant and workload")
        return self


class EndpointConfig(ContractModel):
    """How an LLM endpoint is deployed."""

    replicas: Annotated[int, Field(ge=0, le=10_000), WHOLE_NUMBER]
    """How many model replicas serve the endpoint."""
    tensor_parallel: Annotated[int, Field(ge=1, le=64), WHOLE_NUMBER]
    """GPUs per replica (tensor parallelism degree)."""
    gpu_frequency_mhz: Annotated[int, Field(ge=100, le=5_000), WHOLE_NUMBER]
    """The GPU frequency, in MHz."""


class Reconfiguration(NoticeBase):
    """An LLM endpoint changes configuration, with the latency the platform expects afterwards."""

    kind: Literal["reconfiguration"] = "reconfiguration"
    endpoint: Slug
    """The LLM endpoint reconfigured."""
    before: EndpointConfig
    """The configuration until effective_at."""
    after: EndpointConfig
    """The configuration from effective_at on."""
    reason: Reason
    """Why the platform reconfigures."""
    expected_ttft_ms: Annotated[float, Field(gt=0, le=600_000)] | None = None
    """The time to first token the platform expects afterwards, in milliseconds."""
    expected_tbt_ms: Annotated[float, Field(gt=0, le=60_000)] | None = None
    """The time between tokens the platform expects afterwards, in milliseconds."""
    effective_at: Timestamp
    """When the new configuration takes effect."""

    @property
    def deadline(self) -> datetime:
        return self.effective_at


class Pool(StrEnum):
    """Kinds of capacity, from dearest and safest to cheapest and most disruptable."""

    REGULAR = "regular"
    SPOT = "spot"
    HARVEST = "harvest"
    OVERSUBSCRIBED = "oversubscribed"


class InstancePlacement(ContractModel):
    """Where one instance of a placed deployment runs."""

    region: Slug
    """The region it runs in."""
    pool: Pool
    """The kind of capacity it runs on."""


class Placement(NoticeBase):
    """The outcome of a deployment request: placed, deferred to a start time, or rejected."""

    kind: Literal["placement"] = "placement"
    deployment: Slug
    """The deployment the request named."""
    outcome: Literal["placed", "deferred", "rejected"]
    """placed, deferred or rejected."""
    region: Slug | None = None
    """Where it was placed (or will start); when its instances span several regions, the first
    instance's (see instances)."""
    pool: Pool | None = None
    """The kind of capacity it runs on; when its instances span several pools, the first instance's (see
    instances)."""
    instances: Annotated[list[InstancePlacement], Field(max_length=MAX_INSTANCES)] = Field(
        default_factory=list
    )
    """Where each instance runs, in instance order: the n-th entry is instance <deployment>-<n> (n from
    0). Given with a placed outcome only; empty from a platform that predates it."""
    price_per_hour: Annotated[float, Field(ge=0, le=100_000)] | None = None
    """The price per instance-hour."""
    start_at: Timestamp | None = None
    """When a deferred deployment starts."""
    reason: Reason
    """Why the platform decided so."""

    @model_validator(mode="after")
    def _outcome_complete(self) -> Self:
        if self.outcome == "placed" and (self.region is None or self.pool is None):
            raise ValueError("region: a placed outcome names its region and pool")
        if self.outcome == "deferred" and self.start_at is None:
            raise ValueError("start_at: a deferred outcome names its start time")
        if self.instances and self.outcome != "placed":
            raise ValueError("instances: only a placed outcome says where its instances run")
        return self


Notice = Annotated[
    Eviction | Maintenance | PowerEvent | Resize | CostOffer | Reconfiguration | Placement,
    Field(discriminator="kind"),
]
"""Any notice, told apart by its kind."""
