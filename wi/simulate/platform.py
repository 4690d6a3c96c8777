"""The live platform services, driven in virtual time: no bus, no database, no sleeping.

``Platform`` holds one arm's services (the very ``PlatformService`` objects ``wi up`` runs), the
inventory their decisions change, and the hints the platform knows. ``decide`` does for one input what
``wi.engine.ServiceRunner`` does for a batch: bring the inventory to ``now``, ask the service, then move
its state and the inventory on by its decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from wi.contract import Message
from wi.engine import NO_HINTS, Decision, Inventory, PlatformService, View, WorkloadHints


@dataclass(frozen=True)
class KnownHints(View):
    """A view whose hints are what the simulated platform knows of each workload (by workload name)."""

    known: Mapping[str, WorkloadHints] = field(default_factory=dict)

    def hints_for(self, tenant: str, workload: str, instance: str | None = None) -> WorkloadHints:
        """What the platform knows of a workload (the simulation gives no instance its own hints)."""
        return self.known.get(workload, NO_HINTS)


class Platform:
    """One arm's platform: its services' inputs decided in order, their decisions applied at once."""

    def __init__(self, known: dict[str, WorkloadHints] | None = None) -> None:
        self.inventory = Inventory()
        self.known: dict[str, WorkloadHints] = {} if known is None else known
        """Workload name to what the platform knows of it; the simulation keeps it current."""
        self.view = KnownHints({}, self.inventory, self.known)

    def decide(self, service: PlatformService, message: Message, now: datetime) -> list[Decision]:
        """The service's decisions for one input at ``now``, applied to its state and the inventory."""
        self.inventory.advance(now)
        if not service.wants(message):
            return []
        decisions = service.decide(message, self.view, now)
        for decision in decisions:
            service.apply([decision])
            self.inventory.apply(decision.changes)
        return decisions
