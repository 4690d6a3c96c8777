"""Cost offers: a discount for flexibility a workload's hints show but its price does not yet reflect.

Pure functions. Two offers exist, each opening a cheaper pool to the workload if it commits the hints:

- ``evictable``: stateless and restartable, but not evictable. Committing ``evictability`` (evictable,
  with the notice it already asked for, else 30 s) opens spot capacity.
- ``deferrable``: tolerates an hour's delay or more, but runs at normal priority or above. Committing
  ``priority`` low and ``latency_tolerance`` tolerant opens oversubscribed capacity.

Only workloads whose ``cost`` hint says ``accepts_offers`` get offers, and only for instances already
running on dearer capacity. The discount passes on half the price difference between the pool the
workload runs on and the pool the commitment opens. An offer stays open for ``OFFER_TTL_S``; a declined
offer is not made again to that workload for ``DECLINE_MEMORY_S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wi.contract import (
    Cost,
    DelayTolerance,
    Evictability,
    HintBase,
    LatencyClass,
    LatencyTolerance,
    Migration,
    Pool,
    Priority,
    PriorityLevel,
    Scaling,
)

from ..fleet import Fleet
from ..inventory import Instance
from .policy import DEFAULT_MIN_NOTICE_S, min_notice_s

OFFER_TTL_S = 3600
"""How long an offer may be accepted: an hour."""
DECLINE_MEMORY_S = 7 * 24 * 3600
"""How long a declined offer is not made again to the same workload: a week."""
PASS_ON_SHARE = 0.5
"""The share of the price difference the workload gets; the platform keeps the rest for the risk it takes."""
DEFERRABLE_AFTER_S = 3600
"""A workload that may start this late (or later) is deferrable."""
OFFER_HINT_KINDS = frozenset(
    {"cost", "scaling", "migration", "evictability", "delay_tolerance", "priority", "latency_tolerance"}
)
"""Hint kinds whose change can make a workload eligible for an offer."""


@dataclass(frozen=True)
class OfferTerms:
    """An offer a workload qualifies for: the hints it would commit, the pool they open and the discount."""

    offer: str
    """evictable or deferrable."""
    commit: tuple[HintBase, ...]
    """The hints the workload commits to, issued at the offer's time (the ids are the caller's to set)."""
    opens: Pool
    discount_pct: float
    reason: str


def accepts_offers(hints: dict[str, HintBase]) -> bool:
    """Whether the workload's ``cost`` hint lets the platform send it offers."""
    cost = hints.get("cost")
    return isinstance(cost, Cost) and cost.accepts_offers


def eligible_offers(
    tenant: str,
    workload: str,
    hints: dict[str, HintBase],
    instances: Sequence[Instance],
    fleet: Fleet,
    now: datetime,
) -> tuple[list[OfferTerms], list[str]]:
    """The offers a workload qualifies for now, and a log line for each one it does not."""
    log: list[str] = []
    who = f"{tenant}/{workload}"
    if not accepts_offers(hints):
        return [], [f"{who}: no offers (its cost hint does not accept them)"]
    running = [i for i in instances if (i.tenant, i.workload) == (tenant, workload)]
    if not running:
        return [], [f"{who}: no offers (nothing running to price)"]
    factors = fleet.pool_price_factors
    dearest = max(running, key=lambda i: factors[i.pool]).pool
    terms: list[OfferTerms] = []
    for offer, commit, opens, why in _flexibility(tenant, workload, hints, now):
        if factors[opens] >= factors[dearest]:
            log.append(f"{who}: no {offer} offer ({why}, but it runs on {dearest} already)")
            continue
        discount = round(100 * PASS_ON_SHARE * (1 - factors[opens] / factors[dearest]), 1)
        terms.append(
            OfferTerms(
                offer, commit, opens, discount, f"{why}: {opens} capacity for {discount}% off {dearest}"
            )
        )
    if not terms and not log:
        log.append(f"{who}: no offers (its hints show no unpriced flexibility)")
    return terms, log


def _flexibility(
    tenant: str, workload: str, hints: dict[str, HintBase], now: datetime
) -> list[tuple[str, tuple[HintBase, ...], Pool, str]]:
    """(offer, hints to commit, pool opened, why) for each flexibility the hints show but do not commit."""
    found: list[tuple[str, tuple[HintBase, ...], Pool, str]] = []
    scaling, migration = hints.get("scaling"), hints.get("migration")
    stateless = isinstance(scaling, Scaling) and scaling.stateless
    restartable = isinstance(migration, Migration) and migration.restartable
    if stateless and restartable and min_notice_s(hints) is None:
        evictability = hints.get("evictability")
        notice = evictability.min_notice_s if isinstance(evictability, Evictability) else DEFAULT_MIN_NOTICE_S
        commit = Evictability(
            tenant=tenant, workload=workload, issued_at=now, evictable=True, min_notice_s=notice
        )
        found.append(("evictable", (commit,), Pool.SPOT, "stateless and restartable but not evictable"))
    delay, priority = hints.get("delay_tolerance"), hints.get("priority")
    level = priority.level if isinstance(priority, Priority) else PriorityLevel.NORMAL
    deferrable = isinstance(delay, DelayTolerance) and delay.start_within_s >= DEFERRABLE_AFTER_S
    if deferrable and level in (PriorityLevel.CRITICAL, PriorityLevel.HIGH, PriorityLevel.NORMAL):
        latency = hints.get("latency_tolerance")
        tolerant = (
            latency.model_dump(exclude={"hint_id", "issued_at", "ttl_s", "instance"})
            if isinstance(latency, LatencyTolerance)
            else {"tenant": tenant, "workload": workload}
        ) | {"issued_at": now, "latency_class": LatencyClass.TOLERANT}
        commit_hints: tuple[HintBase, ...] = (
            Priority(tenant=tenant, workload=workload, issued_at=now, level=PriorityLevel.LOW),
            LatencyTolerance.model_validate(tolerant),
        )
        found.append(
            ("deferrable", commit_hints, Pool.OVERSUBSCRIBED, f"delay tolerant but priority {level}")
        )
    return found


def offer_expires_at(now: datetime) -> datetime:
    """When an offer made now stops being acceptable."""
    return now + timedelta(seconds=OFFER_TTL_S)


def declined_until(now: datetime) -> datetime:
    """Until when a declined offer is not made again."""
    return now + timedelta(seconds=DECLINE_MEMORY_S)
