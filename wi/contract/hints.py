"""Hints: what a workload tells the platform about itself, set and changed at run time."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from ._base import WHOLE_NUMBER, Family, MessageId, Slug, TenantMessage, Timestamp, new_message_id

ONE_YEAR_S = 365 * 24 * 3600
ONE_WEEK_S = 7 * 24 * 3600
THIRTY_DAYS_S = 30 * 24 * 3600


class HintBase(TenantMessage):
    """Fields every hint carries: its idempotency key, its scope and its lifetime."""

    family: ClassVar[Family] = Family.HINT

    hint_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key: the same hint_id applied twice is stored once."""
    instance: Slug | None = None
    """The instance this hint is about; none means the whole workload. An instance-scoped hint overrides the
    workload-scoped hint of the same kind for that instance."""
    ttl_s: Annotated[int, Field(ge=1, le=ONE_YEAR_S), WHOLE_NUMBER] | None = None
    """Seconds after issued_at at which the hint expires; none means until replaced or cleared."""

    @property
    def message_id(self) -> str:
        return self.hint_id

    @property
    def subject_kind(self) -> str:
        """The hint kind this message is about (its own kind, or the kind a clear removes)."""
        return self.kind

    @property
    def expires_at(self) -> datetime | None:
        """When the hint stops being effective, or none if it does not expire."""
        return None if self.ttl_s is None else self.issued_at + timedelta(seconds=self.ttl_s)


class PriorityLevel(StrEnum):
    """How important a workload is relative to the tenant's others, highest first."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    BEST_EFFORT = "best_effort"


class Priority(HintBase):
    """How important the workload is; the platform disrupts lower levels first."""

    kind: Literal["priority"] = "priority"
    level: PriorityLevel
    """critical, high, normal, low or best_effort."""


class Evictability(HintBase):
    """Whether the platform may evict the workload, and the notice it needs before that."""

    kind: Literal["evictability"] = "evictability"
    evictable: bool
    """True if the platform may evict instances (e.g. to run them on Spot or Harvest capacity)."""
    min_notice_s: Annotated[int, Field(ge=0, le=ONE_WEEK_S), WHOLE_NUMBER] = 30
    """The least notice, in seconds, the workload needs before an eviction."""
    checkpoint_s: Annotated[int, Field(ge=0, le=ONE_WEEK_S), WHOLE_NUMBER] | None = None
    """How long a checkpoint takes, in seconds, if the workload checkpoints before an eviction."""


class LatencyClass(StrEnum):
    """How much extra latency a workload tolerates."""

    STRICT = "strict"
    MODERATE = "moderate"
    TOLERANT = "tolerant"


class LatencyTolerance(HintBase):
    """How much latency the workload tolerates, including the TTFT/TBT SLOs of LLM endpoints."""

    kind: Literal["latency_tolerance"] = "latency_tolerance"
    latency_class: LatencyClass
    """strict, moderate or tolerant."""
    p99_ms: Annotated[float, Field(gt=0, le=600_000)] | None = None
    """The 99th percentile request latency, in milliseconds, the workload must keep."""
    ttft_ms: Annotated[float, Field(gt=0, le=600_000)] | None = None
    """LLM endpoints: the time-to-first-token SLO, in milliseconds."""
    tbt_ms: Annotated[float, Field(gt=0, le=60_000)] | None = None
    """LLM endpoints: the time-between-tokens SLO, in milliseconds."""
    max_slowdown_pct: Annotated[float, Field(ge=0, le=100)] = 0
    """The slowdown, in percent, the workload accepts under power capping."""


class DelayTolerance(HintBase):
    """How long a deployment may wait before it starts, and when it must be complete (complete_by, if given,
    must be later than issued_at)."""

    kind: Literal["delay_tolerance"] = "delay_tolerance"
    start_within_s: Annotated[int, Field(ge=0, le=THIRTY_DAYS_S), WHOLE_NUMBER]
    """The longest the platform may defer the start, in seconds."""
    complete_by: Timestamp | None = None
    """When the work must be complete, if it has a deadline."""

    @model_validator(mode="after")
    def _complete_by_after_issue(self) -> Self:
        if self.complete_by is not None and self.complete_by <= self.issued_at:
            raise ValueError("complete_by: must be later than issued_at")
        return self


class Availability(HintBase):
    """The availability the workload needs, as a fraction of time."""

    kind: Literal["availability"] = "availability"
    target: Annotated[float, Field(ge=0.9, le=0.99999)]
    """The availability target, from 0.9 to 0.99999 (e.g. 0.999 for three nines)."""


class Region(HintBase):
    """Where the workload may run: the allowed regions (or any) and its data residency."""

    kind: Literal["region"] = "region"
    allowed: Annotated[list[Slug], Field(min_length=1, max_length=64)] | Literal["any"] = "any"
    """The regions the workload may run in (at least one), or "any"."""
    data_residency: Slug | None = None
    """A geography the data must stay in (e.g. "europe"), if any."""


class Scaling(HintBase):
    """Whether the workload is stateless and the range it can scale in (instances, and cores for Harvest);
    min_instances must not exceed max_instances, nor min_cores max_cores."""

    kind: Literal["scaling"] = "scaling"
    stateless: bool
    """True if any instance can be replaced by a fresh one without losing state."""
    min_instances: Annotated[int, Field(ge=0, le=100_000), WHOLE_NUMBER] = 1
    """The fewest instances the workload runs with."""
    max_instances: Annotated[int, Field(ge=1, le=100_000), WHOLE_NUMBER] = 1
    """The most instances the workload can use."""
    min_cores: Annotated[int, Field(ge=1, le=1024), WHOLE_NUMBER] | None = None
    """Harvest VMs: the fewest cores an instance runs with."""
    max_cores: Annotated[int, Field(ge=1, le=1024), WHOLE_NUMBER] | None = None
    """Harvest VMs: the most cores an instance can use."""

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Self:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances: must not exceed max_instances")
        if self.min_cores is not None and self.max_cores is not None and self.min_cores > self.max_cores:
            raise ValueError("min_cores: must not exceed max_cores")
        return self


class Migration(HintBase):
    """Whether the workload survives being moved: live migration, or a restart elsewhere."""

    kind: Literal["migration"] = "migration"
    live_migratable: bool
    """True if instances may be live-migrated (a short freeze)."""
    restartable: bool
    """True if instances may be stopped and restarted elsewhere."""


class Cost(HintBase):
    """Whether the workload takes cost offers, and the most it pays."""

    kind: Literal["cost"] = "cost"
    accepts_offers: bool
    """True if the platform may send cost offers (a discount for a committed hint change)."""
    max_price_per_hour: Annotated[float, Field(ge=0, le=100_000)] | None = None
    """The most the workload pays per instance-hour, in the platform's currency."""


HintKind = Literal[
    "priority",
    "evictability",
    "latency_tolerance",
    "delay_tolerance",
    "availability",
    "region",
    "scaling",
    "migration",
    "cost",
]


class ClearHint(HintBase):
    """Removes the effective hint of one kind (for the whole workload, or for one instance)."""

    kind: Literal["clear"] = "clear"
    hint_kind: HintKind
    """The kind of hint to remove."""
    ttl_s: None = None
    """A clear does not expire."""

    @property
    def subject_kind(self) -> str:
        return self.hint_kind


Hint = Annotated[
    Priority
    | Evictability
    | LatencyTolerance
    | DelayTolerance
    | Availability
    | Region
    | Scaling
    | Migration
    | Cost
    | ClearHint,
    Field(discriminator="kind"),
]
"""Any hint, told apart by its kind."""
