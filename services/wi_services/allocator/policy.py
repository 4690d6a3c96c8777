"""Where a deployment goes, from its hints: a pure function of the fleet's columns, its usage and the request.

Each instance is placed Nova-style: filters keep the hosts its hints allow with room for it (masks over
the fleet, counting why they remove hosts), then weighers rank what is left, each score normalized to
0..1 across the hosts kept before its weight applies:

- fault-domain spread (weight 4): a host in a fault domain the request's earlier instances do not use
  scores 1, else 0;
- the cell weighers (``steps``: pool preference, price or carbon, region preference), which see the
  hosts of one region and pool alike;
- packing (weight 0.5): minus a host's free share of cores, so fuller hosts come first.

So in a cell only spread and packing tell hosts apart, and spread outweighs packing: the best host of a
cell is its fullest kept host in an unused fault domain, or, if it has none, its fullest kept host. The
search (``_Search``) finds the fullest of each cell with one reduction over the fleet's columns (and
looks again, without the used fault domains, in the few cells that have one), and ranks them, cell by
cell from the best cell scores down, until no cell left could beat the best found: the same choice as
weighing every host, at a cost that grows with the fleet only in those few passes over its columns.

An instance's own hints override its workload's (``WorkloadHints.for_instance``) for where it may run;
whether the deployment may wait and how many fault domains it needs are the workload's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wi.contract import (
    DeploymentRequest,
    InstancePlacement,
    LatencyClass,
    Placement,
    Pool,
    PriorityLevel,
    derived_id,
)
from wi.engine import WorkloadHints, instance_name

from .columns import RANKS, FleetColumns, Indices, Room, Usage
from .steps import (
    ALLOWANCE_FILTERS,
    ROOM_FILTERS,
    Allowed,
    Ask,
    CarbonWeigher,
    PoolPreferenceWeigher,
    PriceWeigher,
    RegionPreferenceWeigher,
    Screened,
    Weigher,
    fits,
    screen,
)

TIGHT_HEADROOM = 2.0
"""Capacity is tight when the allowed pools have less than this many times the request free."""
SPREAD_WEIGHT = 4.0
"""Fault-domain spread comes first: availability beats cost."""
PACKING_WEIGHT = 0.5
"""Packing comes last: it keeps whole hosts free for large requests when nothing else decides."""
ROUNDING = 1e-9
"""Room for rounding when a cell's best possible total is compared with the best found."""


class Goal(StrEnum):
    """What region-free placement optimizes."""

    CHEAPEST = "cheapest"
    GREENEST = "greenest"


@cache
def cell_weighers(goal: Goal) -> tuple[tuple[Weigher, float], ...]:
    """The cell weighers and their weights for a goal, in the order their scores add up (after spread)."""
    money_or_carbon: Weigher = PriceWeigher() if goal is Goal.CHEAPEST else CarbonWeigher()
    return ((PoolPreferenceWeigher(), 2.0), (money_or_carbon, 2.0), (RegionPreferenceWeigher(), 1.0))


def fault_domains_needed(hints: WorkloadHints, instances: int) -> int:
    """How many fault domains the availability target needs (three nines: 2, four: 3), capped by instances."""
    target = hints.availability_target
    needed = 3 if target >= 0.9999 else 2 if target >= 0.999 else 1
    return min(needed, instances)


def acceptable_pools(hints: WorkloadHints) -> tuple[tuple[Pool, ...], str]:
    """The pools a workload may run in, most preferred first, and why."""
    level = hints.priority
    if level in (PriorityLevel.CRITICAL, PriorityLevel.HIGH) or hints.availability_target >= 0.999:
        return (Pool.REGULAR,), f"priority {level}, availability target: regular capacity only"
    pools: list[Pool] = []
    reasons = []
    if hints.evictable and hints.min_cores is not None:
        pools.append(Pool.HARVEST)
        reasons.append("evictable with a core range: harvest")
    if hints.evictable:
        pools.append(Pool.SPOT)
        reasons.append("evictable: spot")
    tolerant = hints.latency_class is LatencyClass.TOLERANT
    if level in (PriorityLevel.LOW, PriorityLevel.BEST_EFFORT) and tolerant:
        pools.append(Pool.OVERSUBSCRIBED)
        reasons.append(f"priority {level} and latency tolerant: oversubscribed")
    pools.append(Pool.REGULAR)
    return tuple(pools), "; ".join(reasons) or "no flexibility hinted: regular capacity"


@dataclass
class Placed:
    """The outcome of one request: the placement notice, where each instance went, and why."""

    notice: Placement
    servers: list[str] = field(default_factory=list)
    """Each instance's server, in instance order."""
    log: list[str] = field(default_factory=list)


@lru_cache(maxsize=1024)
def allowance(columns: FleetColumns, allowed: Allowed) -> Screened:
    """The hosts the allowance filters keep, with their log: the same for every request so allowed."""
    everyone = np.ones(len(columns), dtype=np.bool_)
    return screen(everyone, len(columns), [(f.name, f.checks(columns, allowed)) for f in ALLOWANCE_FILTERS])


@lru_cache(maxsize=1024)
def allowed_hosts(columns: FleetColumns, allowed: Allowed) -> Indices:
    """The positions of the hosts the allowance filters keep: a gather of them reads only those."""
    return np.flatnonzero(allowance(columns, allowed).kept)


@dataclass(frozen=True)
class CellTerms:
    """What the cell weighers add to the total of any host of a cell, given the cells with a kept host."""

    terms: tuple[tuple[float, ...], ...]
    """By cell: each cell weigher's weighted, normalized score, in weigher order."""
    sums: tuple[float, ...]
    """By cell: the sum of its terms."""
    order: tuple[int, ...]
    """The cells with a kept host, the highest sum first."""


@lru_cache(maxsize=4096)
def cell_terms(columns: FleetColumns, ask: Ask, goal: Goal, without_hosts: bytes) -> CellTerms:
    """The cell weighers' terms, normalized across the cells with a kept host (``without_hosts`` flags
    the others, one byte per cell)."""
    weighed = cell_weighers(goal)
    kept = np.frombuffer(without_hosts, dtype=np.bool_) == 0
    rows = []
    for weigher, weight in weighed:
        raw = weigher.score(columns, ask)
        low, high = raw[kept].min(), raw[kept].max()
        rows.append(weight * ((raw - low) / (high - low)) if high > low else np.zeros(len(raw)))
    terms = np.array(rows).T
    sums = [sum(cell) for cell in terms.tolist()]
    order = sorted(np.flatnonzero(kept).tolist(), key=lambda cell: -sums[cell])
    return CellTerms(tuple(map(tuple, terms.tolist())), tuple(sums), tuple(order))


def where_placed(instances: Sequence[InstancePlacement]) -> str:
    """Where a placed deployment's instances run: "on spot in useast", or, when they differ, "on spot in
    useast (2), regular in useast (1)"."""
    places = Counter((i.pool, i.region) for i in instances)
    if len(places) == 1:
        [(pool, region)] = places
        return f"on {pool} in {region}"
    return "on " + ", ".join(f"{pool} in {region} ({count})" for (pool, region), count in places.items())


def place(
    columns: FleetColumns,
    usage: Usage,
    request: DeploymentRequest,
    hints: WorkloadHints,
    now: datetime,
    goal: Goal = Goal.CHEAPEST,
    first: int = 0,
) -> Placed:
    """Places every instance of the request, or defers or rejects it. Pure: it only reads ``usage``.

    The instances are numbered from ``first`` (the deployment's next number), which names them for their
    instance-scoped hints.

    The notice's id is fixed by the request (``placement-<request_id>-0``, or a UUID of it if too long).
    """
    who: dict[str, Any] = {
        "tenant": request.tenant,
        "workload": request.workload,
        "deployment": request.deployment,
        "issued_at": now,
        "notice_id": derived_id("placement", request.request_id, 0),
    }
    names = [instance_name(request.deployment, first + n) for n in range(request.instances)]
    views = [hints.for_instance(name) for name in names]
    distinct = {id(view): view for view in (hints, *views)}  # most instances share the workload's view
    asks = {key: _ask(request, view) for key, view in distinct.items()}
    workload_ask, why_pools = asks[id(hints)]
    log = [f"pools: {why_pools}"]

    if hints.delay_tolerant:
        free = int(usage.free.cores[allowed_hosts(columns, workload_ask.allowed)].sum())
        needed = request.instances * request.cores
        if free < TIGHT_HEADROOM * needed:
            start = now + timedelta(seconds=hints.start_within_s)
            log.append(
                f"capacity tight ({free} cores free in allowed pools for {needed} needed); the workload "
                f"tolerates {hints.start_within_s} s of delay: deferred"
            )
            reason = f"deferred to {start:%Y-%m-%d %H:%M} UTC: capacity is tight and the deployment may wait"
            return Placed(Placement(**who, outcome="deferred", start_at=start, reason=reason), log=log)

    trial = _Trial(usage, request)
    searches: dict[int, _Search] = {}
    chosen: list[int] = []
    for name, view in zip(names, views, strict=True):
        if chosen:  # the last booking changed what the searches see
            for each in searches.values():
                each.booked(chosen[-1])
        ask, why = asks[id(view)]
        search = searches.get(id(view))
        first = search is None
        if search is None:
            search = searches[id(view)] = _Search(trial, ask, goal)
            if view is hints:
                log.extend(search.log)
            else:  # an instance whose own hints move it elsewhere
                log.extend(f"instance {name}: {line}" for line in (f"pools: {why}", *search.log))
        best = search.best()
        if best is None:
            notice = _no_room(who, now, hints)
            log.append(f"instance {len(chosen) + 1}: no host left; {notice.outcome}")
            return Placed(notice, log=log)
        host, score = best
        if first:
            place = columns.cell_place[columns.cell[host]]
            log.append(
                f"weighers chose {columns.ids[host]} ({place.pool}, {place.region}) from {search.hosts} "
                f"host(s), score {score:.2f}"
            )
        trial.take(host)
        chosen.append(host)

    spread = len(trial.fault_domains)
    needed_domains = fault_domains_needed(hints, request.instances)
    if spread < needed_domains:
        log.append(f"only {spread} fault domains for {needed_domains} needed")
        return Placed(_no_room(who, now, hints), log=log)
    servers = [columns.ids[host] for host in chosen]
    cells = [columns.cell[host] for host in chosen]
    prices = columns.cell_price_per_core_hour
    price = sum(float(prices[cell]) * request.cores for cell in cells) / len(cells)
    log.append(f"placed {len(chosen)} instance(s) on {', '.join(servers)} across {spread} fault domain(s)")
    instances = [columns.cell_place[cell] for cell in cells]
    reason = f"{why_pools}; {spread} fault domain(s); {goal} allowed region"
    if len(set(cells)) > 1:
        reason += f"; the instances differ, region and pool name the first: {where_placed(instances)}"
    notice = Placement(
        **who,
        outcome="placed",
        region=instances[0].region,
        pool=instances[0].pool,
        instances=instances,
        price_per_hour=round(price, 6),
        reason=reason[:500],
    )
    return Placed(notice, servers, log)


def _ask(request: DeploymentRequest, hints: WorkloadHints) -> tuple[Ask, str]:
    """An instance's ask from its hints and request, and why its pools are what they are."""
    pools, why = acceptable_pools(hints)
    allowed = Allowed(pools, hints.allowed_regions, hints.data_residency)
    return Ask(allowed, tuple(request.regions)), why


def _no_room(who: dict[str, Any], now: datetime, hints: WorkloadHints) -> Placement:
    """No allowed host has room for every instance: deferred if the deployment may wait, else rejected."""
    if hints.delay_tolerant:
        start = now + timedelta(seconds=hints.start_within_s)
        reason = "no allowed host has room now; the deployment may wait"
        return Placement(**who, outcome="deferred", start_at=start, reason=reason)
    return Placement(**who, outcome="rejected", reason="no allowed host has room for every instance")


class _Trial:
    """A decision's own bookings, over the usage it was given and never changes."""

    def __init__(self, usage: Usage, request: DeploymentRequest) -> None:
        self.usage, self.request = usage, request
        self.taken: dict[int, int] = {}
        """Host to the instances this decision put on it so far."""
        self.fault_domains: set[int] = set()
        """The fault domains those hosts are in."""

    def take(self, host: int) -> None:
        """Books one instance of the request on a host."""
        self.taken[host] = self.taken.get(host, 0) + 1
        self.fault_domains.add(self.usage.columns.fault_domain[host])

    def room(self, host: int) -> Room:
        """What is free on one host once this decision's bookings are taken (one-host arrays)."""
        free, taken, request = self.usage.free, self.taken.get(host, 0), self.request
        return Room(
            np.array([free.cores[host] - taken * request.cores]),
            np.array([free.memory_gb[host] - taken * request.memory_gb]),
            np.array([free.gpus[host] - taken * request.gpus]),
        )

    def free_cores(self, host: int) -> int:
        """The cores free on a host once this decision's bookings are taken."""
        return int(self.usage.free.cores[host]) - self.taken.get(host, 0) * self.request.cores


class _Search:
    """One ask's search for the best host in a decision, kept current as the decision books.

    It keeps each kept host's packing key (NaN for the others), and by cell the key of the fullest, which
    names the fullest kept host and, among equals, the one with the highest id, as weighing every host
    would choose.
    """

    def __init__(self, trial: _Trial, ask: Ask, goal: Goal) -> None:
        usage, request = trial.usage, trial.request
        self.columns, self.trial, self.ask, self.goal = usage.columns, trial, ask, goal
        self.allowed = allowance(self.columns, ask.allowed)
        checks = [(f.name, f.checks(usage.free, request)) for f in ROOM_FILTERS]
        screened = screen(self.allowed.kept, self.allowed.count, checks)
        self.log = (*self.allowed.log, *screened.log)
        self.hosts = screened.count
        """How many hosts every filter kept, before this decision booked any."""
        self.keys = np.where(screened.kept, usage.packing_keys, np.nan)
        """Each host's packing key where every filter keeps it, else NaN."""
        self.cell_fullest = np.fmax.reduceat(self.keys, self.columns.cell_starts)
        """By cell: the key of its fullest kept host (NaN: none)."""
        self.emptiest = float(np.fmin.reduce(self.keys))
        """The key of the emptiest kept host (NaN: none)."""
        self.kept = screened.count
        """How many hosts every filter keeps now..."""
        self.kept_in_used = 0
        """...and how many of them are in fault domains the request uses (``domains``)."""
        self.domains: set[int] = set()
        self.used_cohorts: dict[int, list[int]] = {}
        """By cell: its cohorts in those fault domains (only cells that have some)."""
        self._terms: CellTerms | None = None
        for host in trial.taken:  # booked before this search began, for instances with other hints
            self.booked(host)

    @property
    def terms(self) -> CellTerms:
        """The cell weighers' terms for the cells that have a kept host now."""
        if self._terms is None:
            without = np.isnan(self.cell_fullest).tobytes()
            self._terms = cell_terms(self.columns, self.ask, self.goal, without)
        return self._terms

    def booked(self, host: int) -> None:
        """Updates the keys after the decision booked an instance on ``host``."""
        columns = self.columns
        was = float(self.keys[host])
        still = bool(self.allowed.kept[host]) and fits(self.trial.room(host), self.trial.request)
        now = float(columns.packing_keys(self.trial.free_cores(host), host)) if still else math.nan
        self.keys[host] = now
        dropped = was == was and not still
        self.kept -= dropped
        domain = columns.fault_domain[host]
        if domain not in self.domains:
            self.domains.add(domain)
            for cohort in columns.fault_domain_cohorts[domain].tolist():
                self.used_cohorts.setdefault(columns.cohort_cell[cohort], []).append(cohort)
            in_domain = self.keys[columns.fault_domain_hosts[domain]]
            self.kept_in_used += int(np.count_nonzero(~np.isnan(in_domain)))
        else:
            self.kept_in_used -= dropped
        cell = columns.cell[host]
        if _update_fullest(self.cell_fullest, cell, self.keys, columns.cell_hosts(cell), was, now):
            self._terms = None  # the cell has no kept host left: the weighers normalize without it
        if was == self.emptiest:
            self.emptiest = float(np.fmin.reduce(self.keys))

    def best(self) -> tuple[int, float] | None:
        """The best host for the next instance and its total, or None when no host is left.

        Cells are ranked by what the cell weighers add; a cell is looked at only while its best possible
        total (those terms, full spread and full packing) can reach the best found. Among equal totals
        the highest server id wins.
        """
        if math.isnan(self.emptiest):
            return None
        columns, terms, used = self.columns, self.terms, self.trial.fault_domains
        low, high = self._packing(self.emptiest), self._packing(float(np.fmax.reduce(self.cell_fullest)))
        spread = 0 < self.kept_in_used < self.kept  # kept hosts both in used fault domains and not
        reach = (SPREAD_WEIGHT if spread else 0.0) + PACKING_WEIGHT + ROUNDING
        fullest = self.cell_fullest.tolist()
        unused = self._fullest_unused(fullest) if spread else fullest
        best: tuple[float, float, int] | None = None  # (total, id rank, host)
        for cell in terms.order:
            if best is not None and terms.sums[cell] + reach < best[0]:
                break
            keys = (fullest[cell], unused[cell])
            for key in keys[:1] if keys[1] == keys[0] or keys[1] != keys[1] else keys:  # NaN: none
                rank = key % RANKS
                host = columns.by_rank[int(rank)]
                total = SPREAD_WEIGHT * (columns.fault_domain[host] not in used) if spread else 0.0
                for term in terms.terms[cell]:
                    total += term
                if high > low:
                    total += PACKING_WEIGHT * ((self._packing(key) - low) / (high - low))
                if best is None or (total, rank) > best[:2]:
                    best = (total, rank, host)
        assert best is not None
        return best[2], best[0]

    def _packing(self, key: float) -> float:
        """The packing score of the host a key names: minus its free share of cores."""
        host = self.columns.by_rank[int(key % RANKS)]
        return -self.trial.free_cores(host) / self.columns.host_cores[host]

    def _fullest_unused(self, fullest: list[float]) -> list[float]:
        """By cell: the key of its fullest kept host in a fault domain the request does not use yet, given
        the key of its fullest kept host (``fullest``, by cell): the same but in the few cells with a used
        fault domain, where it is looked for again without their hosts."""
        columns, unused = self.columns, list(fullest)
        for cell, cohorts in self.used_cohorts.items():
            hosts = columns.cell_hosts(cell)
            keys = self.keys[hosts].copy()
            for cohort in cohorts:
                run = columns.cohort_hosts(cohort)
                keys[run.start - hosts.start : run.stop - hosts.start] = np.nan
            unused[cell] = float(np.fmax.reduce(keys))
        return unused


def _update_fullest(
    fullest: NDArray[np.float64], group: int, keys: NDArray[np.float64], hosts: slice, was: float, now: float
) -> bool:
    """Updates a group's fullest key after one of its hosts' key went from ``was`` to ``now`` (NaN: no
    longer kept). Returns whether the group has no kept host left."""
    if fullest[group] == was:  # it was the group's fullest: look again
        fullest[group] = np.fmax.reduce(keys[hosts])
        return math.isnan(fullest[group])
    if now == now and not fullest[group] >= now:  # it is kept, and the group had none or it is fuller
        fullest[group] = now
    return False
