"""The allocator's steps, Nova-style: filters remove hosts (saying why), weighers rank what is left.

Each has one method. Weigher scores are normalized to 0..1 across the candidates before their weight
applies, so no weigher dominates by its units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from wi.contract import DeploymentRequest, Pool

from ..fleet import Fleet, Server


@dataclass(frozen=True)
class Ask:
    """One instance to place, with what the hints allow."""

    request: DeploymentRequest
    pools: tuple[Pool, ...]
    """Acceptable pools, most preferred first."""
    regions: frozenset[str] | None
    """Allowed regions; None for any."""
    geography: str | None
    """Required data residency, if any."""
    used_fault_domains: frozenset[str] = frozenset()
    """Fault domains the deployment's earlier instances landed in."""


@dataclass
class Usage:
    """Cores, memory and GPUs in use per server."""

    cores: dict[str, int] = field(default_factory=dict)
    memory_gb: dict[str, float] = field(default_factory=dict)
    gpus: dict[str, int] = field(default_factory=dict)

    def take(self, server: Server, request: DeploymentRequest) -> None:
        """Books one instance of the request on the server."""
        self.cores[server.id] = self.cores.get(server.id, 0) + request.cores
        self.memory_gb[server.id] = self.memory_gb.get(server.id, 0.0) + request.memory_gb
        self.gpus[server.id] = self.gpus.get(server.id, 0) + request.gpus

    def copy(self) -> Usage:
        """An independent copy (to try a placement without booking it)."""
        return Usage(dict(self.cores), dict(self.memory_gb), dict(self.gpus))

    def free_cores(self, server: Server) -> int:
        """Cores still free on the server."""
        return server.cores - self.cores.get(server.id, 0)


class Filter(Protocol):
    """Removes hosts that cannot take the instance."""

    name: str

    def reject(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> str | None:
        """Why the host cannot take the instance, or None if it can."""


class Weigher(Protocol):
    """Scores hosts; higher is better. Scores are normalized across hosts before weighting."""

    name: str

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        """The host's raw score."""


class PoolFilter:
    """Keeps hosts in a pool the hints allow."""

    name = "pool"

    def reject(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> str | None:
        return None if host.pool in ask.pools else f"pool {host.pool} not in {', '.join(ask.pools)}"


class RegionFilter:
    """Keeps hosts in an allowed region and the required geography."""

    name = "region"

    def reject(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> str | None:
        if ask.regions is not None and host.region not in ask.regions:
            return f"region {host.region} not allowed"
        if ask.geography is not None and fleet.region(host.region).geography != ask.geography:
            return f"region {host.region} is outside {ask.geography}"
        return None


class CapacityFilter:
    """Keeps hosts with room for one more instance."""

    name = "capacity"

    def reject(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> str | None:
        request = ask.request
        if usage.free_cores(host) < request.cores:
            return f"{usage.free_cores(host)} cores free, {request.cores} needed"
        if host.memory_gb - usage.memory_gb.get(host.id, 0.0) < request.memory_gb:
            return f"not {request.memory_gb} GB free"
        if host.gpus - usage.gpus.get(host.id, 0) < request.gpus:
            return f"not {request.gpus} GPUs free"
        return None


class PriceWeigher:
    """Cheaper core-hours score higher."""

    name = "price"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        return -fleet.price_per_core_hour(host)


class CarbonWeigher:
    """Greener grids score higher (hosts in regions without data score as the dirtiest)."""

    name = "carbon"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        carbon = fleet.region(host.region).carbon_g_per_kwh
        return -(carbon if carbon is not None else 2000.0)


class PoolPreferenceWeigher:
    """The pools the hints prefer score higher."""

    name = "pool preference"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        return -float(ask.pools.index(host.pool)) if host.pool in ask.pools else -99.0


class RegionPreferenceWeigher:
    """Regions the request prefers score higher, in its order."""

    name = "region preference"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        preferred = ask.request.regions
        return -float(preferred.index(host.region)) if host.region in preferred else -float(len(preferred))


class SpreadWeigher:
    """Fault domains the deployment does not use yet score higher."""

    name = "fault-domain spread"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        return 0.0 if host.fault_domain in ask.used_fault_domains else 1.0


class PackingWeigher:
    """Fuller hosts score higher, leaving whole hosts free for large requests."""

    name = "packing"

    def score(self, host: Server, ask: Ask, fleet: Fleet, usage: Usage) -> float:
        return -usage.free_cores(host) / host.cores


FILTERS: tuple[Filter, ...] = (PoolFilter(), RegionFilter(), CapacityFilter())
"""In order: the cheap checks first, so the log names the most telling reason."""
