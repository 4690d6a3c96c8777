"""Where a deployment goes, from its hints: a pure function of the fleet, its usage and the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from wi.contract import (
    Availability,
    DelayTolerance,
    DeploymentRequest,
    Evictability,
    HintBase,
    LatencyTolerance,
    Placement,
    Pool,
    Priority,
    Region,
    Scaling,
)

from ..fleet import Fleet, Server
from .steps import (
    FILTERS,
    Ask,
    CarbonWeigher,
    PackingWeigher,
    PoolPreferenceWeigher,
    PriceWeigher,
    RegionPreferenceWeigher,
    SpreadWeigher,
    Usage,
    Weigher,
)

TIGHT_HEADROOM = 2.0
"""Capacity is tight when the allowed pools have less than this many times the request free."""


class Goal(StrEnum):
    """What region-free placement optimizes."""

    CHEAPEST = "cheapest"
    GREENEST = "greenest"


def weighers(goal: Goal) -> tuple[tuple[Weigher, float], ...]:
    """The weighers and their weights for a goal."""
    money_or_carbon: Weigher = PriceWeigher() if goal is Goal.CHEAPEST else CarbonWeigher()
    return (
        (SpreadWeigher(), 4.0),  # first: availability beats cost
        (PoolPreferenceWeigher(), 2.0),
        (money_or_carbon, 2.0),
        (RegionPreferenceWeigher(), 1.0),
        (PackingWeigher(), 0.5),
    )


def fault_domains_needed(hints: dict[str, HintBase], instances: int) -> int:
    """How many fault domains the availability target needs (three nines: 2, four: 3), capped by instances."""
    availability = hints.get("availability")
    target = availability.target if isinstance(availability, Availability) else 0.99
    needed = 3 if target >= 0.9999 else 2 if target >= 0.999 else 1
    return min(needed, instances)


def acceptable_pools(hints: dict[str, HintBase]) -> tuple[tuple[Pool, ...], str]:
    """The pools a workload may run in, most preferred first, and why."""
    priority = hints.get("priority")
    level = priority.level if isinstance(priority, Priority) else "normal"
    evictability = hints.get("evictability")
    evictable = isinstance(evictability, Evictability) and evictability.evictable
    latency = hints.get("latency_tolerance")
    tolerant = isinstance(latency, LatencyTolerance) and latency.latency_class == "tolerant"
    scaling = hints.get("scaling")
    harvestable = isinstance(scaling, Scaling) and scaling.min_cores is not None
    availability = hints.get("availability")
    strict = isinstance(availability, Availability) and availability.target >= 0.999
    if level in ("critical", "high") or strict:
        return (Pool.REGULAR,), f"priority {level}, availability target: regular capacity only"
    pools: list[Pool] = []
    reasons = []
    if evictable and harvestable:
        pools.append(Pool.HARVEST)
        reasons.append("evictable with a core range: harvest")
    if evictable:
        pools.append(Pool.SPOT)
        reasons.append("evictable: spot")
    if level in ("low", "best_effort") and tolerant:
        pools.append(Pool.OVERSUBSCRIBED)
        reasons.append(f"priority {level} and latency tolerant: oversubscribed")
    pools.append(Pool.REGULAR)
    return tuple(pools), "; ".join(reasons) or "no flexibility hinted: regular capacity"


@dataclass
class Placed:
    """The outcome of one request: the placement notice, where each instance went, and why."""

    notice: Placement
    servers: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def _allowed_regions(hints: dict[str, HintBase]) -> tuple[frozenset[str] | None, str | None]:
    region = hints.get("region")
    if not isinstance(region, Region):
        return None, None
    allowed = None if region.allowed == "any" else frozenset(region.allowed)
    return allowed, region.data_residency


def place(
    fleet: Fleet,
    usage: Usage,
    request: DeploymentRequest,
    hints: dict[str, HintBase],
    now: datetime,
    goal: Goal = Goal.CHEAPEST,
) -> Placed:
    """Places every instance of the request, or defers or rejects it. Books what it places in ``usage``."""
    pools, why_pools = acceptable_pools(hints)
    regions, geography = _allowed_regions(hints)
    base = Ask(request, pools, regions, geography)
    log = [f"pools: {why_pools}"]
    who: dict[str, Any] = {
        "tenant": request.tenant,
        "workload": request.workload,
        "deployment": request.deployment,
        "issued_at": now,
    }
    delay = hints.get("delay_tolerance")
    patient = isinstance(delay, DelayTolerance) and delay.start_within_s > 0

    usable = [s for s in fleet.servers if all(f.reject(s, base, fleet, Usage()) is None for f in FILTERS[:2])]
    free = sum(usage.free_cores(s) for s in usable)
    needed = request.instances * request.cores
    if patient and free < TIGHT_HEADROOM * needed:
        assert isinstance(delay, DelayTolerance)
        start = now + timedelta(seconds=delay.start_within_s)
        log.append(
            f"capacity tight ({free} cores free in allowed pools for {needed} needed); the workload "
            f"tolerates {delay.start_within_s} s of delay: deferred"
        )
        reason = f"deferred to {start:%Y-%m-%d %H:%M} UTC: capacity is tight and the deployment may wait"
        return Placed(Placement(**who, outcome="deferred", start_at=start, reason=reason), log=log)

    trial = usage.copy()
    chosen: list[Server] = []
    for index in range(request.instances):
        ask = Ask(request, pools, regions, geography, frozenset(s.fault_domain for s in chosen))
        host = _best_host(fleet, trial, ask, goal, log if index == 0 else None)
        if host is None:
            outcome = "deferred" if patient else "rejected"
            log.append(f"instance {index + 1}: no host left; {outcome}")
            return Placed(_unplaced(request, who, outcome, now, hints), log=log)
        trial.take(host, request)
        chosen.append(host)
    spread = len({s.fault_domain for s in chosen})
    if spread < fault_domains_needed(hints, request.instances):
        log.append(f"only {spread} fault domains for {fault_domains_needed(hints, request.instances)} needed")
        return Placed(_unplaced(request, who, "deferred" if patient else "rejected", now, hints), log=log)
    for host in chosen:
        usage.take(host, request)
    first = chosen[0]
    price = sum(fleet.price_per_core_hour(s) * request.cores for s in chosen) / len(chosen)
    log.append(
        f"placed {len(chosen)} instance(s) on {', '.join(s.id for s in chosen)} across {spread} fault "
        f"domain(s)"
    )
    reason = f"{why_pools}; {spread} fault domain(s); {goal} allowed region"
    notice = Placement(
        **who,
        outcome="placed",
        region=first.region,
        pool=first.pool,
        price_per_hour=round(price, 6),
        reason=reason[:500],
    )
    return Placed(notice, [s.id for s in chosen], log)


def _unplaced(
    request: DeploymentRequest, who: dict[str, Any], outcome: str, now: datetime, hints: dict[str, HintBase]
) -> Placement:
    if outcome == "deferred":
        delay = hints["delay_tolerance"]
        assert isinstance(delay, DelayTolerance)
        start = now + timedelta(seconds=delay.start_within_s)
        return Placement(
            **who,
            outcome="deferred",
            start_at=start,
            reason="no allowed host has room now; the deployment may wait",
        )
    return Placement(**who, outcome="rejected", reason="no allowed host has room for every instance")


def _best_host(fleet: Fleet, usage: Usage, ask: Ask, goal: Goal, log: list[str] | None) -> Server | None:
    hosts = list(fleet.servers)
    for step in FILTERS:
        kept: list[tuple[Server, str | None]] = []
        removed: list[tuple[Server, str | None]] = []
        for host in hosts:
            why = step.reject(host, ask, fleet, usage)
            (removed if why else kept).append((host, why))
        if log is not None and removed:
            reasons = sorted({why for _, why in removed if why})
            log.append(f"{step.name} filter removed {len(removed)} host(s): {'; '.join(reasons)}")
        hosts = [host for host, _ in kept]
    if not hosts:
        return None
    totals = {host.id: 0.0 for host in hosts}
    for weigher, weight in weighers(goal):
        raw = {host.id: weigher.score(host, ask, fleet, usage) for host in hosts}
        low, high = min(raw.values()), max(raw.values())
        for host_id, value in raw.items():
            totals[host_id] += weight * ((value - low) / (high - low) if high > low else 0.0)
    best = max(hosts, key=lambda host: (totals[host.id], host.id))
    if log is not None:
        log.append(
            f"weighers chose {best.id} ({best.pool}, {best.region}) from {len(hosts)} host(s), "
            f"score {totals[best.id]:.2f}"
        )
    return best
