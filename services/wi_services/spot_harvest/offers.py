"""Cost offers: a discount for flexibility a workload's hints show but its price does not yet reflect.

Pure functions. Two offers exist, each opening a cheaper pool to the workload if it commits the hints:

- ``evictable``: stateless and restartable, but not evictable. Committing ``evictability`` (evictable,
  with the notice it already asked for, else 30 s) opens spot capacity.
- ``deferrable``: tolerates an hour's delay or more, but runs at normal priority or above. Committing
  ``priority`` low and ``latency_tolerance`` tolerant opens oversubscribed capacity.

Only workloads whose ``cost`` hint says ``accepts_offers`` get offers, and only for instances already
running on dearer capacity. The discount passes on half the price difference between the pool the
workload runs on and the pool the commitment opens. An offer stays open for ``OFFER_TTL_S``; a declined
offer is not made again to that workload for ``DECLINE_MEMORY_S``. An unanswered offer is remembered for
``ANSWER_GRACE_S`` after it lapses, for a verdict that reaches the manager late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wi.contract import (
    Evictability,
    HintBase,
    LatencyClass,
    LatencyTolerance,
    Pool,
    Priority,
    PriorityLevel,
)
from wi.engine import Instance, WorkloadHints
from wi.engine.fleet import Fleet

OFFER_TTL_S = 3600
"""How long an offer may be accepted: an hour."""
DECLINE_MEMORY_S = 7 * 24 * 3600
"""How long a declined offer is not made again to the same workload: a week."""
ANSWER_GRACE_S = 7 * 24 * 3600
"""How long after it lapses an unanswered offer is remembered: the registry judges an answer by when it
arrived, so its verdict on one that came in time may reach the manager after the offer lapsed (a backlog
after an outage). A week: as long as the bus keeps a verdict (the verdicts stream's ``max_age``)."""
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


def eligible_offers(
    tenant: str,
    workload: str,
    hints: WorkloadHints,
    instances: Sequence[Instance],
    fleet: Fleet,
    now: datetime,
) -> tuple[list[OfferTerms], list[str]]:
    """The offers a workload qualifies for now, and a log line for each one it does not."""
    log: list[str] = []
    who = f"{tenant}/{workload}"
    if not hints.accepts_offers:
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
    tenant: str, workload: str, hints: WorkloadHints, now: datetime
) -> list[tuple[str, tuple[HintBase, ...], Pool, str]]:
    """(offer, hints to commit, pool opened, why) for each flexibility the hints show but do not commit."""
    found: list[tuple[str, tuple[HintBase, ...], Pool, str]] = []
    who = {"tenant": tenant, "workload": workload, "issued_at": now}
    if hints.stateless and hints.restartable and not hints.evictable:
        commit = Evictability(**who, evictable=True, min_notice_s=hints.min_notice_s)
        found.append(("evictable", (commit,), Pool.SPOT, "stateless and restartable but not evictable"))
    important = hints.priority in (PriorityLevel.CRITICAL, PriorityLevel.HIGH, PriorityLevel.NORMAL)
    if hints.start_within_s >= DEFERRABLE_AFTER_S and important:
        tolerant = LatencyTolerance(
            **who,
            latency_class=LatencyClass.TOLERANT,
            p99_ms=hints.p99_ms,
            ttft_ms=hints.ttft_ms,
            tbt_ms=hints.tbt_ms,
            max_slowdown_pct=hints.max_slowdown_pct,
        )
        commit_hints = (Priority(**who, level=PriorityLevel.LOW), tolerant)
        found.append(
            ("deferrable", commit_hints, Pool.OVERSUBSCRIBED, f"delay tolerant but priority {hints.priority}")
        )
    return found


def offer_expires_at(now: datetime) -> datetime:
    """When an offer made now stops being acceptable."""
    return now + timedelta(seconds=OFFER_TTL_S)


def answerable_until(expires_at: datetime) -> datetime:
    """Until when a verdict on an offer that lapses at ``expires_at`` is still acted on."""
    return expires_at + timedelta(seconds=ANSWER_GRACE_S)


def declined_until(now: datetime) -> datetime:
    """Until when a declined offer is not made again."""
    return now + timedelta(seconds=DECLINE_MEMORY_S)
