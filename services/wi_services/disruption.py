"""How much disrupting a workload costs it, by its hints: who is evicted, capped or slowed first."""

from __future__ import annotations

from wi.contract import HintBase, LatencyTolerance, Priority

PRIORITY_COST = {"best_effort": 0, "low": 1, "normal": 2, "high": 3, "critical": 4}
LATENCY_COST = {"tolerant": 0, "moderate": 1, "strict": 2}


def disruption_cost(hints: dict[str, HintBase]) -> tuple[int, int]:
    """(priority, latency strictness) of a workload; the lowest goes first. Unhinted: normal, moderate."""
    priority = hints.get("priority")
    latency = hints.get("latency_tolerance")
    return (
        PRIORITY_COST[priority.level] if isinstance(priority, Priority) else PRIORITY_COST["normal"],
        LATENCY_COST[latency.latency_class]
        if isinstance(latency, LatencyTolerance)
        else LATENCY_COST["moderate"],
    )
