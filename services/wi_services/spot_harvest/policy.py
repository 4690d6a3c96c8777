"""Which instances to evict under capacity pressure, and with how much notice: pure functions."""

from __future__ import annotations

import heapq
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from wi.contract import CapacityPressure
from wi.engine import HintsLookup, Instance


@dataclass(frozen=True)
class Eviction:
    """One instance to evict, and when."""

    instance: Instance
    not_before: datetime
    reason: str


@dataclass
class EvictionPlan:
    """The evictions that free the capacity, and what could not be freed in time."""

    evictions: list[Eviction] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    short_in_time_cores: int = 0
    """Cores needed within the deadline that only notices longer than it could free."""
    short_cores: int = 0
    """Cores that could not be freed at all."""


def plan_evictions(
    pressure: CapacityPressure,
    instances: Sequence[Instance],
    hints_for: HintsLookup,
    already_evicting: Set[str],
    now: datetime,
) -> EvictionPlan:
    """Evictions freeing ``cores_needed`` in the pressured cluster and pool at the least cost to workloads.

    Each instance is judged by its own hints (an instance's hint overrides its workload's): one that is
    not evictable is kept, and one in ``already_evicting`` (on its way out: given notice) is not evicted
    again. Never gives less notice than an instance's ``min_notice_s``: one whose notice is longer than
    ``needed_within_s`` is evicted at its notice, and the shortfall is reported, not forced.
    """
    plan = EvictionPlan()
    here = [i for i in instances if i.cluster == pressure.cluster and i.pool == pressure.pool]
    candidates: list[tuple[bool, tuple[int, int], int, str, Instance, int]] = []
    for instance in here:
        key = instance_key(instance)
        if key in already_evicting:
            continue
        hints = hints_for(instance.tenant, instance.workload, instance.instance)
        if not hints.evictable:
            plan.log.append(f"{key}: not evictable (no evictable hint); kept")
            continue
        notice = hints.min_notice_s
        late = notice > pressure.needed_within_s
        candidates.append((late, hints.disruption_cost, -instance.cores, key, instance, notice))
    heapq.heapify(candidates)  # in time first, then cheapest, largest, by key (unique: never further)
    freed = freed_in_time = 0
    while candidates and freed < pressure.cores_needed:  # only as many as it takes, in that order
        late, cost, _, _, instance, notice = heapq.heappop(candidates)
        notice_s = max(notice, pressure.needed_within_s)
        why = (
            f"capacity pressure on {pressure.pool} in {pressure.cluster} ({pressure.cores_needed} cores "
            f"within {pressure.needed_within_s} s); priority/latency cost {cost}, notice {notice_s} s"
        )
        plan.evictions.append(Eviction(instance, now + timedelta(seconds=notice_s), why))
        plan.log.append(
            f"evict {instance_key(instance)} ({instance.cores} cores) with {notice_s} s notice"
            + (f", later than needed: its min_notice_s is {notice}" if late else "")
        )
        freed += instance.cores
        if not late:
            freed_in_time += instance.cores
    plan.short_cores = max(0, pressure.cores_needed - freed)
    plan.short_in_time_cores = max(0, min(pressure.cores_needed, freed) - freed_in_time)
    return plan


def instance_key(instance: Instance) -> str:
    """An instance's id across tenants: tenant/workload/instance."""
    return f"{instance.tenant}/{instance.workload}/{instance.instance}"
