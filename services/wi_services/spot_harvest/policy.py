"""Which instances to evict under capacity pressure, and with how much notice: pure functions, and the
ranking of a cell's evictable instances they read, which the manager keeps from one event to the next."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from wi.contract import CapacityPressure
from wi.engine import HintsLookup, Instance, WorkloadHints

REBUILD_SHARE = 8
"""A ranking is sorted anew, rather than changed one candidate at a time, when more than one in this many
of its candidates changed."""


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


class Candidate(NamedTuple):
    """An evictable instance as the plan weighs it, read from its hints once. Candidates compare in
    eviction order: the lowest disruption cost first, then the most cores, then by key (unique in a
    cell, so no two compare equal and the fields after it are never compared)."""

    cost: tuple[int, int]
    """Its hints' ``disruption_cost``."""
    minus_cores: int
    key: str
    notice_s: int
    """Its hints' ``min_notice_s``."""
    instance: Instance
    hints: WorkloadHints
    """The hints it was ranked by: other hints for the instance make it stale."""


class EvictionRanking:
    """One cell's evictable instances as candidates in eviction order, kept in step with the cell by
    ``update``: an instance placed since, or whose hints are another object, is ranked (again); one gone
    is dropped. The order is the same as ranking the cell anew."""

    def __init__(self) -> None:
        self.ranked: list[Candidate] = []
        """The candidates, in eviction order."""
        self._by_key: dict[str, Candidate] = {}

    def update(self, instances: Sequence[Instance], hints_for: HintsLookup) -> list[Instance]:
        """Brings the ranking in step with the cell's ``instances`` and the hints in effect now; returns
        the instances that are not evictable, in the order of ``instances``."""
        by_key = self._by_key
        kept: list[Instance] = []
        stale: list[Candidate] = []
        fresh: list[Candidate] = []
        for instance in instances:
            hints = hints_for(instance.tenant, instance.workload, instance.instance)
            known = by_key.get(instance.key)
            if known is not None and known.hints is hints and known.instance is instance:
                continue
            if known is not None:
                stale.append(known)
            if hints.evictable:
                fresh.append(
                    Candidate(
                        hints.disruption_cost,
                        -instance.cores,
                        instance.key,
                        hints.min_notice_s,
                        instance,
                        hints,
                    )
                )
            else:
                kept.append(instance)
        if len(by_key) - len(stale) > len(instances) - len(kept) - len(fresh):  # some are gone from the cell
            here = {instance.key for instance in instances}
            stale.extend(known for key, known in by_key.items() if key not in here)
        for known in stale:
            del by_key[known.key]
        for candidate in fresh:
            by_key[candidate.key] = candidate
        if REBUILD_SHARE * (len(stale) + len(fresh)) > len(by_key):
            self.ranked = sorted(by_key.values())
        else:
            for known in stale:
                del self.ranked[bisect_left(self.ranked, known)]
            for candidate in fresh:
                insort(self.ranked, candidate)
        return kept


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
    here = [i for i in instances if i.cluster == pressure.cluster and i.pool == pressure.pool]
    ranking = EvictionRanking()
    kept = ranking.update(here, hints_for)
    return plan_ranked_evictions(pressure, ranking.ranked, kept, already_evicting, now)


def plan_ranked_evictions(
    pressure: CapacityPressure,
    ranked: Iterable[Candidate],
    kept: Iterable[Instance],
    already_evicting: Set[str],
    now: datetime,
) -> EvictionPlan:
    """``plan_evictions`` for a cell already ranked: its evictable instances as candidates in eviction
    order (``EvictionRanking.ranked``), and those not evictable (``kept``), in the cell's order.

    Candidates are taken in order, those whose notice fits ``needed_within_s`` first, only as many as it
    takes: a pressure event reads the cheapest of a cell, not all of it.
    """
    plan = EvictionPlan()
    plan.log.extend(
        f"{instance.key}: not evictable (no evictable hint); kept"
        for instance in kept
        if instance.key not in already_evicting
    )
    needed, within = pressure.cores_needed, pressure.needed_within_s
    late: list[Candidate] = []
    freed = freed_in_time = 0
    for candidate in ranked:
        if freed >= needed:
            break
        if candidate.key in already_evicting:
            continue
        if candidate.notice_s > within:
            late.append(candidate)  # after every one in time, in the same order
            continue
        _evict(plan, pressure, candidate, within, now)
        freed += candidate.instance.cores
    freed_in_time = freed
    for candidate in late:
        if freed >= needed:
            break
        _evict(plan, pressure, candidate, candidate.notice_s, now)
        freed += candidate.instance.cores
    plan.short_cores = max(0, needed - freed)
    plan.short_in_time_cores = max(0, min(needed, freed) - freed_in_time)
    return plan


def _evict(
    plan: EvictionPlan, pressure: CapacityPressure, candidate: Candidate, notice_s: int, now: datetime
) -> None:
    """Adds one eviction, with ``notice_s`` of notice, to the plan and its log."""
    instance, late = candidate.instance, candidate.notice_s > pressure.needed_within_s
    why = (
        f"capacity pressure on {pressure.pool} in {pressure.cluster} ({pressure.cores_needed} cores "
        f"within {pressure.needed_within_s} s); priority/latency cost {candidate.cost}, notice {notice_s} s"
    )
    plan.evictions.append(Eviction(instance, now + timedelta(seconds=notice_s), why))
    plan.log.append(
        f"evict {candidate.key} ({instance.cores} cores) with {notice_s} s notice"
        + (f", later than needed: its min_notice_s is {candidate.notice_s}" if late else "")
    )
