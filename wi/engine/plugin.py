"""The contract of a platform service: what it consumes, wants and concerns, and how it decides.

A service declares the streams it consumes, says which of their messages it wants and whose hints they
concern, and decides with a pure policy: its state, one input, a view of the hints and of what runs
where, and the time in; decisions out; no I/O and no change to its state. ``apply`` moves its state on
by its decisions once they are recorded; ``reset`` forgets it. ``runner.ServiceRunner`` runs a service on
the bus. Services register by name in the entry-point group ``wi.services``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from wi.contract import Family, HintBase, Message, NoticeBase, TenantMessage
from wi.engine import (
    NO_HINTS,
    Decision,
    Instance,
    InstancePlaced,
    InstanceReleased,
    InstanceResized,
    Inventory,
    WorkloadHints,
)
from wi.registry import EffectiveHints

from .fleet import Fleet

ENTRY_POINT_GROUP = "wi.services"


@dataclass(frozen=True)
class View:
    """What a decision may read, gathered by the runner before it calls ``decide``."""

    hints: Mapping[tuple[str, str], EffectiveHints]
    """(tenant, workload) to the hints in effect, workload-wide and per instance, for the workloads the
    batch concerns."""
    inventory: Inventory = field(default_factory=Inventory)
    """What runs where (kept current for services that declare ``needs_inventory``)."""

    @property
    def instances(self) -> tuple[Instance, ...]:
        """Every instance running."""
        return tuple(self.inventory)

    @cached_property
    def _typed(self) -> dict[tuple[str, str], WorkloadHints]:
        """Each workload's typed view, built once per view."""
        return {workload: WorkloadHints.of(effective) for workload, effective in self.hints.items()}

    def hints_for(self, tenant: str, workload: str, instance: str | None = None) -> WorkloadHints:
        """The hints in effect for a workload, or for one of its instances (the defaults where none)."""
        hints = self._typed.get((tenant, workload), NO_HINTS)
        return hints if instance is None else hints.for_instance(instance)


@dataclass(frozen=True)
class ServiceContext:
    """What every service is given: the fleet and the operator's policy choices."""

    fleet: Fleet
    placement_goal: str = "cheapest"
    """cheapest or greenest: what region-free placement optimizes."""
    llm_perf_dir: Path | None = None
    """Where the LLM performance tables are; None: the default place."""


class PlatformService(ABC):
    """A platform service. Subclass it, say what it consumes, and implement ``decide``.

    Register it in the entry-point group ``wi.services`` under its ``name``:
    ``[project.entry-points."wi.services"] my-service = "my_package:MyService"``.
    """

    name: ClassVar[str]
    """The name `wi up --services` and `wi audit` use."""
    consumes: ClassVar[tuple[Family, ...]]
    """The streams whose messages reach ``decide``."""
    needs_inventory: ClassVar[bool] = False
    """Whether ``decide`` reads what runs where."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.fleet = context.fleet

    def wants(self, message: Message) -> bool:
        """Whether an input concerns the service; the runner drops the rest before any other work."""
        return True

    def concerns(self, message: Message, inventory: Inventory) -> set[tuple[str, str]]:
        """The (tenant, workload) pairs whose hints ``decide`` reads for this input.

        By default the workload a tenant message is about; a service names others here (the instances
        an event touches, the LLM endpoints of a power domain), and the runner reads only those.
        """
        return {(message.tenant, message.workload)} if isinstance(message, TenantMessage) else set()

    @abstractmethod
    def reset(self) -> None:
        """Forgets all state (before ``restore`` replays the recorded decisions)."""

    @abstractmethod
    def apply(self, decisions: Sequence[Decision]) -> None:
        """Moves the state on by decisions now recorded. ``decide`` itself changes nothing."""

    def restore(self, decisions: Sequence[Decision]) -> None:
        """Rebuilds the state from the service's own past decisions, oldest first (at start)."""
        self.reset()
        self.apply(decisions)

    @abstractmethod
    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        """The decisions for one input. Pure: reads its state, the view and the time; changes nothing."""

    def decision(
        self,
        input_id: str,
        index: int,
        action: str,
        summary: str,
        reasons: Sequence[str] = (),
        *,
        notices: Sequence[NoticeBase] = (),
        hints: Sequence[HintBase] = (),
        changes: Sequence[InstancePlaced | InstanceReleased | InstanceResized] = (),
        tenant: str | None = None,
        workload: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Decision:
        """A decision of this service: the ``index``-th about input ``input_id``."""
        return Decision(
            service=self.name,
            input_id=input_id,
            index=index,
            action=action,
            summary=summary,
            reasons=tuple(reasons),
            notices=tuple(notices),
            hints=tuple(hints),
            changes=tuple(changes),
            tenant=tenant,
            workload=workload,
            detail=detail or {},
        )

    def alert(self, input_id: str, index: int, log: Sequence[str], summary: str) -> Decision:
        """A decision with no notice: something the operator must see, with the steps that led to it."""
        return self.decision(input_id, index, "alert", summary, log)


def installed_services() -> dict[str, type[PlatformService]]:
    """Every service installed in the entry-point group ``wi.services``, by name."""
    found: dict[str, type[PlatformService]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        service = entry.load()
        if not (isinstance(service, type) and issubclass(service, PlatformService)):
            raise TypeError(f"entry point {entry.name} = {entry.value} is not a PlatformService")
        found[entry.name] = service
    return found
