"""Platform events: what telemetry or an operator tells the platform services."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ._base import WHOLE_NUMBER, Family, Message, MessageId, Slug, Timestamp, new_message_id
from .notices import MaintenanceType, Pool

ONE_DAY_S = 24 * 3600


class PlatformEventBase(Message):
    """Fields every platform event carries."""

    family: ClassVar[Family] = Family.EVENT
    about: ClassVar[str]
    """The field naming the resource the event is about; it becomes ce-subject."""

    event_id: MessageId = Field(default_factory=new_message_id)
    """Idempotency key of the event."""
    source: Annotated[str, Field(min_length=1, max_length=128)] = "operator"
    """Who reports the event (a telemetry pipeline, an operator)."""

    @property
    def message_id(self) -> str:
        return self.event_id

    @property
    def ce_subject(self) -> str:
        return str(getattr(self, self.about))


class CapacityPressure(PlatformEventBase):
    """A pool in a cluster needs capacity back."""

    about: ClassVar[str] = "cluster"

    kind: Literal["capacity_pressure"] = "capacity_pressure"
    cluster: Slug
    """The cluster under pressure."""
    pool: Pool
    """The pool that must give capacity back."""
    cores_needed: Annotated[int, Field(ge=1, le=1_000_000), WHOLE_NUMBER]
    """How many cores must be freed."""
    needed_within_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER]
    """How soon the cores are needed, in seconds; 0 means now."""


class PowerCap(PlatformEventBase):
    """A power domain must stay under a cap (or, with ended, the cap is lifted)."""

    about: ClassVar[str] = "power_domain"

    kind: Literal["power_cap"] = "power_cap"
    power_domain: Slug
    """The power domain capped."""
    cap_watts: Annotated[int, Field(ge=1, le=100_000_000), WHOLE_NUMBER]
    """The power budget, in watts."""
    draw_watts: Annotated[int, Field(ge=0, le=100_000_000), WHOLE_NUMBER] | None = None
    """The domain's draw when observed, in watts."""
    expected_duration_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER] | None = None
    """How long the cap is expected to last, in seconds."""
    ended: bool = False
    """True when the cap is lifted."""


class ThermalEmergency(PlatformEventBase):
    """A power domain overheats and must shed power now (or, with ended, has recovered)."""

    about: ClassVar[str] = "power_domain"

    kind: Literal["thermal_emergency"] = "thermal_emergency"
    power_domain: Slug
    """The power domain affected."""
    severity: Literal["warning", "critical"]
    """warning or critical."""
    ended: bool = False
    """True when the emergency is over."""


class SpareCapacity(PlatformEventBase):
    """How many cores a server has spare for Harvest VMs right now."""

    about: ClassVar[str] = "server"

    kind: Literal["spare_capacity"] = "spare_capacity"
    server: Slug
    """The server."""
    spare_cores: Annotated[int, Field(ge=0, le=1024), WHOLE_NUMBER]
    """Cores not used by regular VMs."""
    spare_memory_gb: Annotated[float, Field(ge=0, le=24_576)]
    """Memory not used by regular VMs, in GB."""


class MaintenancePlanned(PlatformEventBase):
    """An operator plans maintenance of a server."""

    about: ClassVar[str] = "server"

    kind: Literal["maintenance_planned"] = "maintenance_planned"
    server: Slug
    """The server."""
    type: MaintenanceType
    """reboot, redeploy, live_migration or freeze."""
    not_before: Timestamp
    """Maintenance starts no earlier than this."""
    expected_duration_s: Annotated[int, Field(ge=0, le=ONE_DAY_S), WHOLE_NUMBER]
    """How long instances are affected, in seconds."""


class PriceUpdate(PlatformEventBase):
    """The price of a pool in a region changes."""

    about: ClassVar[str] = "region"

    kind: Literal["price_update"] = "price_update"
    region: Slug
    """The region."""
    pool: Pool
    """The pool."""
    price_per_core_hour: Annotated[float, Field(ge=0, le=1_000)]
    """The new price per core-hour."""


class EndpointLoad(PlatformEventBase):
    """The load an LLM endpoint sees now."""

    about: ClassVar[str] = "endpoint"

    kind: Literal["endpoint_load"] = "endpoint_load"
    endpoint: Slug
    """The LLM endpoint."""
    requests_per_s: Annotated[float, Field(ge=0, le=1_000_000)]
    """Requests per second."""
    mean_prompt_tokens: Annotated[int, Field(ge=0, le=1_000_000), WHOLE_NUMBER] | None = None
    """Mean prompt length, in tokens."""
    mean_output_tokens: Annotated[int, Field(ge=0, le=1_000_000), WHOLE_NUMBER] | None = None
    """Mean output length, in tokens."""


PlatformEvent = Annotated[
    CapacityPressure
    | PowerCap
    | ThermalEmergency
    | SpareCapacity
    | MaintenancePlanned
    | PriceUpdate
    | EndpointLoad,
    Field(discriminator="kind"),
]
"""Any platform event, told apart by its kind."""
