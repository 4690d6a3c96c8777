"""A workload's hints as one typed view, built once, with every default in this one place.

Policies never look a hint up by kind: they read ``WorkloadHints``, whose attributes hold what the hints
in effect say and, where a workload said nothing, the default written (with why) on the attribute
below. ``for_instance`` gives one instance's view: the instance's own hints override the workload's,
kind by kind, as the registry resolves them (``EffectiveHints.for_instance``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wi.contract import (
    Availability,
    Cost,
    DelayTolerance,
    Evictability,
    HintBase,
    LatencyClass,
    LatencyTolerance,
    Migration,
    Priority,
    PriorityLevel,
    Region,
    Scaling,
)
from wi.registry.semantics import EffectiveHints

DEFAULT_MIN_NOTICE_S: int = Evictability.model_fields["min_notice_s"].default
"""The notice promised to a workload that did not say how much it needs: what an ``evictability`` hint
without ``min_notice_s`` promises (the contract's default, 30 s), so that silence and that hint agree."""

PRIORITY_RANK = {
    PriorityLevel.BEST_EFFORT: 0,
    PriorityLevel.LOW: 1,
    PriorityLevel.NORMAL: 2,
    PriorityLevel.HIGH: 3,
    PriorityLevel.CRITICAL: 4,
}
"""How much a priority level protects a workload from disruption: the lowest rank goes first."""
LATENCY_STRICTNESS = {LatencyClass.TOLERANT: 0, LatencyClass.MODERATE: 1, LatencyClass.STRICT: 2}
"""How much a latency class suffers from disruption (eviction, capping, slowing): the lowest goes first."""


@dataclass(frozen=True)
class WorkloadHints:
    """What a workload's (or one instance's) hints in effect say, each attribute typed and defaulted.

    Build it with ``of`` (from the registry's ``EffectiveHints``) or ``from_hints`` (from a kind-to-hint
    mapping); ``WorkloadHints()`` is an unhinted workload. Two views that say the same are equal.
    """

    priority: PriorityLevel = PriorityLevel.NORMAL
    """``priority``. Unhinted: normal, the middle, so silence neither sacrifices nor shields a workload."""
    latency_class: LatencyClass = LatencyClass.MODERATE
    """``latency_tolerance``. Unhinted: moderate, the middle: neither disrupted first nor last."""
    p99_ms: float | None = None
    """``latency_tolerance``: the p99 latency to keep. Unhinted: none stated, nothing to keep."""
    ttft_ms: float | None = None
    """``latency_tolerance``: an LLM endpoint's time-to-first-token SLO. Unhinted: none."""
    tbt_ms: float | None = None
    """``latency_tolerance``: an LLM endpoint's time-between-tokens SLO. Unhinted: none."""
    max_slowdown_pct: float = 0.0
    """``latency_tolerance``: the slowdown accepted under power capping. Unhinted: none accepted."""
    evictable: bool = False
    """``evictability``. Unhinted: not evictable; the platform evicts only what consented."""
    min_notice_s: int = DEFAULT_MIN_NOTICE_S
    """``evictability``: the least notice before an eviction or a shrink. Unhinted: DEFAULT_MIN_NOTICE_S."""
    checkpoint_s: int | None = None
    """``evictability``: how long a checkpoint takes. Unhinted: the workload does not checkpoint."""
    start_within_s: int = 0
    """``delay_tolerance``: how long the start may be deferred. Unhinted: 0, it must start now."""
    complete_by: datetime | None = None
    """``delay_tolerance``: when the work must be done. Unhinted: no deadline."""
    availability_target: float = 0.99
    """``availability``. Unhinted: two nines, what one instance in one fault domain is taken to give, so
    no spread is needed."""
    allowed_regions: frozenset[str] | None = None
    """``region``: the regions it may run in; None for any. Unhinted: any."""
    data_residency: str | None = None
    """``region``: the geography its data must stay in. Unhinted: none."""
    stateless: bool = False
    """``scaling``. Unhinted: assume state that replacing an instance would lose."""
    min_instances: int = 1
    """``scaling``: the fewest instances it runs with. Unhinted: 1."""
    max_instances: int = 1
    """``scaling``: the most instances it can use. Unhinted: 1, not scalable unless it says so."""
    min_cores: int | None = None
    """``scaling``: a Harvest VM's fewest cores. Unhinted: no core range (it keeps the size it was placed
    with; see ``core_range``)."""
    max_cores: int | None = None
    """``scaling``: a Harvest VM's most cores. Unhinted: its minimum."""
    live_migratable: bool = False
    """``migration``. Unhinted: assume a live migration would hurt it."""
    restartable: bool = False
    """``migration``. Unhinted: assume a restart elsewhere would hurt it."""
    accepts_offers: bool = False
    """``cost``. Unhinted: no cost offers unless the workload asks for them."""
    max_price_per_hour: float | None = None
    """``cost``: the most it pays per instance-hour. Unhinted: no limit stated."""
    _instances: Mapping[str, WorkloadHints] = field(default_factory=dict, compare=False, repr=False)
    """The views of the instances that have hints of their own (built with the workload's)."""

    @classmethod
    def of(cls, effective: EffectiveHints) -> WorkloadHints:
        """The view of the hints the registry resolved for a workload, instance overrides included."""
        return cls.from_hints(effective.workload_hints, effective.instance_hints)

    @classmethod
    def from_hints(
        cls,
        workload: Mapping[str, HintBase],
        instances: Mapping[str, Mapping[str, HintBase]] | None = None,
    ) -> WorkloadHints:
        """The view of workload-wide hints by kind, and of each instance's own hints by kind."""
        own = {
            instance: cls(**_attributes({**workload, **hints}.values()))
            for instance, hints in (instances or {}).items()
            if hints
        }
        return cls(**_attributes(workload.values()), _instances=own)

    def for_instance(self, instance: str) -> WorkloadHints:
        """One instance's view: its own hints override the workload's, kind by kind."""
        return self._instances.get(instance, self)

    @property
    def priority_rank(self) -> int:
        """0 (best effort) to 4 (critical): how much the priority shields the workload from disruption."""
        return PRIORITY_RANK[self.priority]

    @property
    def disruption_cost(self) -> tuple[int, int]:
        """(priority rank, latency strictness): who is evicted, capped or slowed first (the lowest)."""
        return self.priority_rank, LATENCY_STRICTNESS[self.latency_class]

    @property
    def delay_tolerant(self) -> bool:
        """Whether its start may be deferred at all."""
        return self.start_within_s > 0

    def core_range(self, placed_cores: int) -> tuple[int, int]:
        """(fewest, most) cores a Harvest VM may have: its scaling hint's, else fixed at ``placed_cores``."""
        if self.min_cores is None:
            return placed_cores, placed_cores
        return self.min_cores, self.max_cores or self.min_cores


NO_HINTS = WorkloadHints()
"""An unhinted workload's view: every default."""

HintsLookup = Callable[[str, str, str | None], WorkloadHints]
"""(tenant, workload, instance or None for the whole workload) to the hints in effect there."""


def _attributes(hints: Iterable[HintBase]) -> dict[str, Any]:
    """The ``WorkloadHints`` attributes the hints set; the rest keep their defaults."""
    said: dict[str, Any] = {}
    for hint in hints:
        match hint:
            case Priority():
                said["priority"] = hint.level
            case LatencyTolerance():
                said.update(
                    latency_class=hint.latency_class,
                    p99_ms=hint.p99_ms,
                    ttft_ms=hint.ttft_ms,
                    tbt_ms=hint.tbt_ms,
                    max_slowdown_pct=hint.max_slowdown_pct,
                )
            case Evictability():
                said.update(
                    evictable=hint.evictable, min_notice_s=hint.min_notice_s, checkpoint_s=hint.checkpoint_s
                )
            case DelayTolerance():
                said.update(start_within_s=hint.start_within_s, complete_by=hint.complete_by)
            case Availability():
                said["availability_target"] = hint.target
            case Region():
                regions = None if hint.allowed == "any" else frozenset(hint.allowed)
                said.update(allowed_regions=regions, data_residency=hint.data_residency)
            case Scaling():
                said.update(
                    stateless=hint.stateless,
                    min_instances=hint.min_instances,
                    max_instances=hint.max_instances,
                    min_cores=hint.min_cores,
                    max_cores=hint.max_cores,
                )
            case Migration():
                said.update(live_migratable=hint.live_migratable, restartable=hint.restartable)
            case Cost():
                said.update(accepts_offers=hint.accepts_offers, max_price_per_hour=hint.max_price_per_hour)
    return said
