"""The fleet as NumPy columns, built once per service, and what is used and free on it as arrays.

Every array is indexed like ``FleetColumns``: host ``i`` is ``columns.ids[i]``. The hosts are ordered by
region, pool, fault domain and id, so that each cell (the hosts of one region and pool) and each cohort
(of one fault domain in a cell) is one contiguous run: a reduction per cell is one pass
(``np.fmax.reduceat``), and a cohort's hosts are a slice of its cell's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import NDArray

from wi.contract import DeploymentRequest, InstancePlacement, Pool
from wi.engine import ServerUse
from wi.engine.fleet import Fleet

POOLS: tuple[Pool, ...] = tuple(Pool)
"""A pool's code is its position here."""
UNKNOWN_CARBON_G_PER_KWH = 2000.0
"""The carbon intensity of a region without data: the contract's dirtiest, so it never looks green."""
FULLNESS_STEPS = 2.0**24
"""Packing keys compare how full hosts are in steps of 1/2^24: two fractions of at most 1,024 cores that
differ, differ by at least 1/2^20, so the steps keep every order and tie only equal fractions."""
RANKS = 2.0**20
"""More than a fleet's most servers (1,000,000): a packing key holds a host's id rank below this."""

Mask = NDArray[np.bool_]
"""One flag per host (or per cell)."""
Indices = NDArray[np.intp]
"""Host (or cell) positions."""


@dataclass(frozen=True, eq=False)
class FleetColumns:
    """The fleet's servers as arrays, with what the allocator weighs precomputed. Build with ``of``.

    A cell is the servers of one region and pool, a cohort those of one fault domain in a cell. Every
    filter but capacity and every weigher but packing and fault-domain spread sees the servers of a cell
    alike, and spread sees those of a cohort alike.
    """

    fleet: Fleet
    ids: tuple[str, ...]
    """Server ids, by position."""
    index: Mapping[str, int]
    """Server id to position."""
    regions: tuple[str, ...]
    """Region names; a region's code is its position here."""
    fault_domains: tuple[str, ...]
    """Fault-domain names; a fault domain's code is its position here."""
    region: Indices
    """Each host's region code."""
    pool: Indices
    """Each host's pool code (see POOLS)."""
    fault_domain: tuple[int, ...]
    """Each host's fault-domain code (a tuple: the search reads one host at a time)."""
    geography: tuple[str, ...]
    """Each region's geography, by region code."""
    cores: NDArray[np.int64]
    host_cores: tuple[int, ...]
    """``cores`` as a tuple, for the search's one-host reads."""
    memory_gb: NDArray[np.float64]
    gpus: NDArray[np.int64]
    id_rank: Indices
    """Each host's rank among the ids in sorted order (ties between equal scores go to the highest)."""
    by_rank: tuple[int, ...]
    """The host of each id rank."""
    cell: tuple[int, ...]
    """Each host's cell."""
    cell_starts: Indices
    """Where each cell's run of hosts begins."""
    cohort_starts: Indices
    """Where each cohort's run of hosts begins (cohorts are numbered in host order)."""
    cohort_cell: tuple[int, ...]
    """Each cohort's cell."""
    cell_region: Indices
    """Each cell's region code."""
    cell_pool: Indices
    """Each cell's pool code."""
    cell_price_per_core_hour: NDArray[np.float64]
    """Each cell's price of a core-hour: its region's price times its pool's factor."""
    cell_carbon_g_per_kwh: NDArray[np.float64]
    """Each cell's grid carbon intensity (UNKNOWN_CARBON_G_PER_KWH where the fleet has none)."""
    cell_place: tuple[InstancePlacement, ...]
    """Each cell's region and pool, as a placement notice names them."""
    fault_domain_hosts: tuple[Indices, ...]
    """Each fault domain's hosts."""
    fault_domain_cohorts: tuple[Indices, ...]
    """Each fault domain's cohorts."""

    @classmethod
    def of(cls, fleet: Fleet) -> FleetColumns:
        """The columns of a fleet, hosts in cell and cohort order."""
        servers = sorted(fleet.servers, key=lambda s: (s.region, s.pool, s.fault_domain, s.id))
        regions = tuple(r.name for r in fleet.regions)
        fault_domains = tuple(sorted({s.fault_domain for s in servers}))
        region_code = {name: code for code, name in enumerate(regions)}
        domain_code = {name: code for code, name in enumerate(fault_domains)}
        by_region = {r.name: r for r in fleet.regions}
        cells = [(s.region, s.pool) for s in servers]
        cohorts = [(s.region, s.pool, s.fault_domain) for s in servers]
        cell_starts = _run_starts(cells)
        cohort_starts = _run_starts(cohorts)
        ids = tuple(s.id for s in servers)
        id_rank = np.argsort(np.argsort(np.array(ids))).astype(np.intp)
        firsts = [servers[i] for i in cell_starts]
        carbon = [by_region[s.region].carbon_g_per_kwh for s in firsts]
        domain = np.array([domain_code[s.fault_domain] for s in servers], dtype=np.intp)
        cohort_domain = domain[cohort_starts]
        return cls(
            fleet=fleet,
            ids=ids,
            index={server_id: i for i, server_id in enumerate(ids)},
            regions=regions,
            fault_domains=fault_domains,
            region=np.array([region_code[s.region] for s in servers], dtype=np.intp),
            pool=np.array([POOLS.index(s.pool) for s in servers], dtype=np.intp),
            fault_domain=tuple(domain.tolist()),
            geography=tuple(r.geography for r in fleet.regions),
            cores=np.array([s.cores for s in servers], dtype=np.int64),
            host_cores=tuple(s.cores for s in servers),
            memory_gb=np.array([s.memory_gb for s in servers], dtype=np.float64),
            gpus=np.array([s.gpus for s in servers], dtype=np.int64),
            id_rank=id_rank,
            by_rank=tuple(np.argsort(id_rank).tolist()),
            cell=tuple(_run_numbers(cell_starts, len(servers)).tolist()),
            cell_starts=cell_starts,
            cohort_starts=cohort_starts,
            cohort_cell=tuple((np.searchsorted(cell_starts, cohort_starts, side="right") - 1).tolist()),
            cell_region=np.array([region_code[s.region] for s in firsts], dtype=np.intp),
            cell_pool=np.array([POOLS.index(s.pool) for s in firsts], dtype=np.intp),
            cell_price_per_core_hour=np.array([fleet.price_per_core_hour(s) for s in firsts]),
            cell_carbon_g_per_kwh=np.array([UNKNOWN_CARBON_G_PER_KWH if c is None else c for c in carbon]),
            cell_place=tuple(InstancePlacement(region=s.region, pool=s.pool) for s in firsts),
            fault_domain_hosts=_by_code(domain, len(fault_domains)),
            fault_domain_cohorts=_by_code(cohort_domain, len(fault_domains)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def cohort_hosts(self, cohort: int) -> slice:
        """The positions of one cohort's hosts."""
        return _run(self.cohort_starts, cohort, len(self))

    def cell_hosts(self, cell: int) -> slice:
        """The positions of one cell's hosts."""
        return _run(self.cell_starts, cell, len(self))

    @overload
    def packing_keys(self, free_cores: NDArray[np.int64], hosts: slice | Indices) -> NDArray[np.float64]: ...
    @overload
    def packing_keys(self, free_cores: int, hosts: int) -> float: ...
    def packing_keys(
        self, free_cores: NDArray[np.int64] | int, hosts: slice | Indices | int
    ) -> NDArray[np.float64] | float:
        """A key per host given its free cores (or one host's key): the fuller the higher, then the higher id.

        The host's id rank less its free share of cores in FULLNESS_STEPS times RANKS: exact in a float
        (below 2^53), so the maximum of some hosts' keys names the fullest of them (the highest id among
        equals), and the minimum the emptiest. One host's key is computed with NumPy scalars, alike.
        """
        free_steps = np.rint(free_cores / self.cores[hosts] * FULLNESS_STEPS)
        keys: NDArray[np.float64] | float = self.id_rank[hosts] - free_steps * RANKS
        return keys


def _by_code(codes: Indices, count: int) -> tuple[Indices, ...]:
    """For each code from 0 to ``count``, the positions that hold it."""
    order = np.argsort(codes, kind="stable")
    return tuple(np.split(order, np.cumsum(np.bincount(codes, minlength=count))[:-1]))


def _run_starts(keys: Sequence[object]) -> Indices:
    """Where each run of equal consecutive keys begins."""
    return np.array([i for i, key in enumerate(keys) if i == 0 or key != keys[i - 1]], dtype=np.intp)


def _run_numbers(starts: Indices, size: int) -> Indices:
    """The number of the run each of ``size`` positions is in."""
    return np.repeat(np.arange(len(starts), dtype=np.intp), np.diff([*starts, size]))


def _run(starts: Indices, run: int, size: int) -> slice:
    """The positions of one run."""
    stop = starts[run + 1] if run + 1 < len(starts) else size
    return slice(int(starts[run]), int(stop))


@dataclass(frozen=True)
class Room:
    """What is free on each host of the fleet (or on one host)."""

    cores: NDArray[np.int64]
    memory_gb: NDArray[np.float64]
    gpus: NDArray[np.int64]


@dataclass
class Usage:
    """Cores, memory and GPUs in use on each host, indexed like the columns, and what follows from them:
    the room left and each host's packing key. Only ``book`` changes it."""

    columns: FleetColumns
    cores: NDArray[np.int64]
    memory_gb: NDArray[np.float64]
    gpus: NDArray[np.int64]
    free: Room
    """Capacity less use."""
    packing_keys: NDArray[np.float64]
    """``columns.packing_keys`` of the free cores."""

    @classmethod
    def empty(cls, columns: FleetColumns) -> Usage:
        """Nothing in use."""
        size = len(columns)
        free = Room(columns.cores.copy(), columns.memory_gb.copy(), columns.gpus.copy())
        keys = columns.packing_keys(free.cores, slice(0, size))
        used = np.zeros(size, np.int64), np.zeros(size, np.float64), np.zeros(size, np.int64)
        return cls(columns, *used, free, keys)

    @classmethod
    def of(cls, columns: FleetColumns, use: Mapping[str, ServerUse]) -> Usage:
        """What the inventory says is in use on each server."""
        usage = cls.empty(columns)
        for server, used in use.items():
            usage.add(columns.index[server], used)
        return usage

    def book(self, hosts: Sequence[int] | NDArray[np.intp], request: DeploymentRequest) -> None:
        """Books one instance of the request on each of ``hosts`` (a host may appear more than once)."""
        hosts = np.asarray(hosts, dtype=np.intp)
        np.add.at(self.cores, hosts, request.cores)
        np.add.at(self.memory_gb, hosts, request.memory_gb)
        np.add.at(self.gpus, hosts, request.gpus)
        self._refresh(hosts)

    def add(self, host: int, used: ServerUse) -> None:
        """Adds a change of use on one host (negative where something was released)."""
        self.cores[host] += used.cores
        self.memory_gb[host] += used.memory_gb
        self.gpus[host] += used.gpus
        self._refresh(slice(host, host + 1))

    def _refresh(self, hosts: NDArray[np.intp] | slice) -> None:
        """Recomputes the room left and the packing keys of hosts whose use changed."""
        columns, free = self.columns, self.free
        free.cores[hosts] = columns.cores[hosts] - self.cores[hosts]
        free.memory_gb[hosts] = columns.memory_gb[hosts] - self.memory_gb[hosts]
        free.gpus[hosts] = columns.gpus[hosts] - self.gpus[hosts]
        self.packing_keys[hosts] = columns.packing_keys(free.cores[hosts], hosts)
