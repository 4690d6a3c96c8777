"""What each simulated workload needs, drawn once, and what the platform knows of it in each arm.

A VM's needs (``Traits``) are drawn per workload from the characterization of 188 cloud workloads behind
the Workload Intelligence paper (arXiv:2404.19143; ``../shared/data/README.md``), seeded, and correlated
with the trace's own priority: a low-priority VM was bought as spot, so it is preemptible and needs no
more than two nines. The traits share one latent flexibility per workload (low-priority VMs the most
flexible), so a stateless workload is more likely also preemptible, migratable and delay tolerant.

Both arms serve the same needs; they differ only in what the platform knows (``vm_hints``): without WI,
the VM's size and priority (spot when bought as spot, with the fixed 30 s notice), its home region, and
every other hint's default; with WI, the hints the workload states. An ablation knows everything but one
optimization's hints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from wi.contract import LatencyClass, PriorityLevel
from wi.engine import DEFAULT_MIN_NOTICE_S, NO_HINTS, WorkloadHints

from .traces import VmTrace


class Optimization(StrEnum):
    """A platform optimization the hints enable; each is measured by a run that ignores its hints."""

    SPOT = "spot"
    HARVEST = "harvest"
    OVERSUBSCRIPTION = "oversubscription"
    DEFERRAL = "deferral"
    REGION_SHIFTING = "region shifting"
    REDUCED_REDUNDANCY = "reduced redundancy"
    GPU_POWER = "GPU frequency and power capping"


WITHOUT_WI: frozenset[Optimization] = frozenset()
"""What a cloud reads today: no hint."""
WITH_WI: frozenset[Optimization] = frozenset(Optimization)
"""Every hint read."""

CORRELATION = 0.5
"""The weight of a workload's shared flexibility in each trait's draw (the rest is the trait's own)."""
DELAY_TOLERANCE_S = 3600
"""How long a delay-tolerant workload's start may wait: the spot-harvest offers' threshold for deferrable
(``DEFERRABLE_AFTER_S``)."""
NOTICE_NEEDS_S = (30, 120, 600)
"""The notice a preemptible workload needs, drawn uniformly: Azure's spot eviction notice (30 s), AWS's
spot interruption notice (2 min) and Azure's redeploy notice (10 min), as ``../shared/data/README.md``
lists them. An assumption: the characterization gives no distribution."""
TWO_NINES, THREE_NINES, FOUR_NINES = 0.99, 0.999, 0.9999


@dataclass(frozen=True)
class Characterization:
    """The share of workloads with each trait (the paper's characterization by default)."""

    stateless: float = 0.629
    """Partially to fully stateless."""
    three_nines_or_less: float = 0.628
    """Need three nines of availability or less (preemptible ones: two nines; the others: three)."""
    preemptible: float = 0.606
    """At least partially preemptible."""
    delay_tolerant: float = 0.25
    """Tolerate delays: about a quarter."""
    migratable: float = 0.614
    """Can be migrated, partly or fully (taken here as: may run in any region)."""
    notice_needs_s: tuple[int, ...] = NOTICE_NEEDS_S
    """The notices a preemptible workload may need."""
    endpoints_hint: bool = True
    """Whether LLM endpoints state their TTFT/TBT SLOs and latency class."""


SILENT = Characterization(0.0, 0.0, 0.0, 0.0, 0.0, (DEFAULT_MIN_NOTICE_S,), endpoints_hint=False)
"""Workloads that need no more than a cloud assumes today, and say nothing: both arms must agree."""


@dataclass(frozen=True)
class Traits:
    """Each VM's true needs, as columns indexed like the trace."""

    low_priority: NDArray[np.bool_]
    preemptible: NDArray[np.bool_]
    stateless: NDArray[np.bool_]
    delay_tolerant: NDArray[np.bool_]
    migratable: NDArray[np.bool_]
    availability: NDArray[np.float64]
    """The availability target."""
    min_notice_s: NDArray[np.int64]
    """The notice it needs before an eviction."""
    home: NDArray[np.intp]
    """Its home region's position in the scenario's regions."""
    cores: NDArray[np.int64]


def draw_traits(trace: VmTrace, shares: Characterization, regions: int, rng: np.random.Generator) -> Traits:
    """Each VM's needs, drawn with ``rng`` so that the shares hold exactly (where the trace's own low
    priority does not already exceed them)."""
    n = len(trace)
    low = trace.low_priority
    low_share = float(low.mean())
    flexibility = np.where(low, rng.uniform(0, low_share, n), rng.uniform(low_share, 1, n))

    def trait(share: float, forced: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
        """The ``share`` of VMs whose mix of shared flexibility and own chance is lowest (``forced``
        first)."""
        score = CORRELATION * flexibility + (1 - CORRELATION) * rng.uniform(0, 1, n)
        if forced is not None:
            score = np.where(forced, -1.0, score)
        chosen = np.zeros(n, dtype=np.bool_)
        chosen[
            np.argsort(score, kind="stable")[
                : max(round(share * n), 0 if forced is None else int(forced.sum()))
            ]
        ] = True
        return chosen

    preemptible = trait(shares.preemptible, forced=low)
    relaxed = trait(shares.three_nines_or_less, forced=low)
    availability = np.where(relaxed, np.where(preemptible, TWO_NINES, THREE_NINES), FOUR_NINES)
    availability = np.where(low, TWO_NINES, availability)
    return Traits(
        low_priority=low,
        preemptible=preemptible,
        stateless=trait(shares.stateless),
        delay_tolerant=trait(shares.delay_tolerant),
        migratable=trait(shares.migratable),
        availability=availability,
        min_notice_s=rng.choice(np.array(shares.notice_needs_s, dtype=np.int64), n),
        home=rng.integers(0, regions, n).astype(np.intp),
        cores=trace.cores,
    )


def vm_hints(
    traits: Traits, vm: int, regions: tuple[str, ...], reads: frozenset[Optimization]
) -> WorkloadHints:
    """What the platform knows of VM ``vm`` when it reads the hints of the optimizations in ``reads``."""
    low = bool(traits.low_priority[vm])
    spot = Optimization.SPOT in reads
    evictable = bool(traits.preemptible[vm]) if spot else low
    tolerant = Optimization.OVERSUBSCRIPTION in reads and bool(traits.delay_tolerant[vm])
    cores = int(traits.cores[vm])
    harvest = Optimization.HARVEST in reads and evictable and bool(traits.stateless[vm]) and cores >= 2
    free = Optimization.REGION_SHIFTING in reads and bool(traits.migratable[vm])
    return WorkloadHints(
        priority=PriorityLevel.LOW if low or tolerant else PriorityLevel.NORMAL,
        latency_class=LatencyClass.TOLERANT if tolerant else NO_HINTS.latency_class,
        evictable=evictable,
        min_notice_s=int(traits.min_notice_s[vm]) if spot else DEFAULT_MIN_NOTICE_S,
        start_within_s=DELAY_TOLERANCE_S
        if Optimization.DEFERRAL in reads and traits.delay_tolerant[vm]
        else 0,
        availability_target=float(traits.availability[vm])
        if Optimization.REDUCED_REDUNDANCY in reads
        else NO_HINTS.availability_target,
        allowed_regions=None if free else frozenset({regions[traits.home[vm]]}),
        stateless=bool(traits.stateless[vm]) and Optimization.HARVEST in reads,
        min_cores=math.ceil(cores / 2) if harvest else None,
        max_cores=cores if harvest else None,
    )
