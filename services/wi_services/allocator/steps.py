"""The allocator's steps, Nova-style, over arrays: filters remove hosts and count why, weighers rank.

A filter gives its checks: for each reason it removes hosts for, the mask of the hosts that pass.
``screen`` applies them in order and counts, per reason, the hosts each removed first. Allowance filters
read where a host is (pool, region), so their outcome for one set of allowances can be kept; room
filters read only what is free, so they can re-check a few hosts after a trial booking.

A weigher scores cells, one raw score each (higher is better); the scores are normalized to 0..1 across
the cells with a host every filter keeps before the weigher's weight applies, so no weigher dominates by
its units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from wi.contract import DeploymentRequest, Pool

from .columns import POOLS, FleetColumns, Mask, Room

Check = tuple[str, Mask]
"""A reason hosts are removed for, and the mask of the hosts that pass."""


@dataclass(frozen=True)
class Allowed:
    """Where an instance may run, as its hints say."""

    pools: tuple[Pool, ...]
    """Acceptable pools, most preferred first."""
    regions: frozenset[str] | None
    """Allowed regions; None for any."""
    geography: str | None
    """Required data residency, if any."""


@dataclass(frozen=True)
class Ask:
    """Where one instance may run, as its hints say, and where its request would rather it ran."""

    allowed: Allowed
    preferred_regions: tuple[str, ...] = ()
    """The request's preferred regions, most preferred first."""


class AllowanceFilter(Protocol):
    """Removes hosts by where they are. Reads the columns only."""

    name: str

    def checks(self, columns: FleetColumns, allowed: Allowed) -> list[Check]:
        """The reasons this filter removes hosts for, each with the hosts that pass."""


class RoomFilter(Protocol):
    """Removes hosts by what is free on them. Reads the room only (the whole fleet's, or a run of it)."""

    name: str

    def checks(self, room: Room, request: DeploymentRequest) -> list[Check]:
        """The reasons this filter removes hosts for, each with the hosts that pass."""


class PoolFilter:
    """Keeps hosts in a pool the hints allow."""

    name = "pool"

    def checks(self, columns: FleetColumns, allowed: Allowed) -> list[Check]:
        wanted = ", ".join(allowed.pools)
        return [
            (f"pool {pool} not in {wanted}", columns.pool != code)
            for code, pool in enumerate(POOLS)
            if pool not in allowed.pools
        ]


class RegionFilter:
    """Keeps hosts in an allowed region and the required geography."""

    name = "region"

    def checks(self, columns: FleetColumns, allowed: Allowed) -> list[Check]:
        found = []
        for code, region in enumerate(columns.regions):
            if allowed.regions is not None and region not in allowed.regions:
                found.append((f"region {region} not allowed", columns.region != code))
            elif allowed.geography is not None and columns.geography[code] != allowed.geography:
                found.append((f"region {region} is outside {allowed.geography}", columns.region != code))
        return found


class CapacityFilter:
    """Keeps hosts with room for one more instance."""

    name = "capacity"

    def checks(self, room: Room, request: DeploymentRequest) -> list[Check]:
        found = [
            (f"fewer than {request.cores} cores free", room.cores >= request.cores),
            (f"not {request.memory_gb:g} GB free", room.memory_gb >= request.memory_gb),
        ]
        if request.gpus:
            found.append((f"fewer than {request.gpus} GPUs free", room.gpus >= request.gpus))
        return found


ALLOWANCE_FILTERS: tuple[AllowanceFilter, ...] = (PoolFilter(), RegionFilter())
ROOM_FILTERS: tuple[RoomFilter, ...] = (CapacityFilter(),)


@dataclass(frozen=True)
class Screened:
    """The hosts every filter kept, how many, and a log line for each filter that removed some."""

    kept: Mask
    count: int
    log: tuple[str, ...]


def screen(hosts: Mask, count: int, steps: Sequence[tuple[str, Sequence[Check]]]) -> Screened:
    """Applies each named filter's checks in order to ``hosts`` (``count`` of them), counting the hosts
    each reason removed.

    A log line reads "capacity filter removed 9,874 host(s): fewer than 4 cores free (9,870); not 8 GB
    free (4)": each host is counted under the first reason that removed it.
    """
    kept, left, log = hosts, count, []
    for name, checks in steps:
        removed: dict[str, int] = {}
        for reason, passes in checks:
            kept = kept & passes
            still = int(np.count_nonzero(kept))
            if still < left:
                removed[reason] = left - still
            left = still
        if removed:
            reasons = "; ".join(f"{reason} ({hosts:,})" for reason, hosts in removed.items())
            log.append(f"{name} filter removed {sum(removed.values()):,} host(s): {reasons}")
    return Screened(kept, left, tuple(log))


def fits(room: Room, request: DeploymentRequest) -> bool:
    """Whether every room filter keeps the host of a one-host room."""
    return all(
        bool(passes[0]) for room_filter in ROOM_FILTERS for _, passes in room_filter.checks(room, request)
    )


class Weigher(Protocol):
    """Scores cells (the hosts of one region and pool); higher is better.

    The scores are normalized to 0..1 across the cells with a host every filter keeps before the weight
    applies. A weigher reads where hosts are and the ask, never what is free, so its scores are kept per
    ask; fault-domain spread and packing, which read what the request's instances took, are part of the
    search (``policy``).
    """

    name: str

    def score(self, columns: FleetColumns, ask: Ask) -> NDArray[np.float64]:
        """Each cell's raw score."""


class PriceWeigher:
    """Cheaper core-hours score higher."""

    name = "price"

    def score(self, columns: FleetColumns, ask: Ask) -> NDArray[np.float64]:
        return -columns.cell_price_per_core_hour


class CarbonWeigher:
    """Greener grids score higher (cells in regions without data score as the dirtiest)."""

    name = "carbon"

    def score(self, columns: FleetColumns, ask: Ask) -> NDArray[np.float64]:
        return -columns.cell_carbon_g_per_kwh


class PoolPreferenceWeigher:
    """The pools the hints prefer score higher."""

    name = "pool preference"

    def score(self, columns: FleetColumns, ask: Ask) -> NDArray[np.float64]:
        by_pool = np.full(len(POOLS), -99.0)
        for rank, pool in enumerate(ask.allowed.pools):
            by_pool[POOLS.index(pool)] = -rank
        return by_pool[columns.cell_pool]


class RegionPreferenceWeigher:
    """Regions the request prefers score higher, in its order."""

    name = "region preference"

    def score(self, columns: FleetColumns, ask: Ask) -> NDArray[np.float64]:
        preferred = ask.preferred_regions
        by_region = np.full(len(columns.regions), -float(len(preferred)))
        for rank, region in reversed(list(enumerate(preferred))):  # a region named twice: its first rank
            if region in columns.regions:
                by_region[columns.regions.index(region)] = -rank
        return by_region[columns.cell_region]
