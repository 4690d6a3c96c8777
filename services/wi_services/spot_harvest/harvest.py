"""How a server's spare cores are shared among its Harvest VMs: a pure function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wi.contract import HintBase, Scaling, SpareCapacity

from ..disruption import PRIORITY_COST
from ..inventory import Instance
from .policy import instance_key


@dataclass
class HarvestPlan:
    """The cores each Harvest VM on the server gets, and what could not be met."""

    cores: dict[str, int] = field(default_factory=dict)
    """Instance key to its new number of cores."""
    log: list[str] = field(default_factory=list)
    short_cores: int = 0
    """Cores the minimums need beyond what is spare: the platform must evict to free them."""


def core_range(hints: dict[str, HintBase], placed_cores: int) -> tuple[int, int]:
    """(min, max) cores a Harvest VM may have: its scaling hint, else fixed at what it was placed with."""
    scaling = hints.get("scaling")
    if isinstance(scaling, Scaling) and scaling.min_cores is not None:
        return scaling.min_cores, scaling.max_cores or scaling.min_cores
    return placed_cores, placed_cores


def share_spare_cores(
    spare: SpareCapacity, instances: Sequence[Instance], hints_for: Callable[[str, str], dict[str, HintBase]]
) -> HarvestPlan:
    """Gives every Harvest VM on the server its minimum, then the rest up to each maximum, by priority.

    Never below a minimum: when the minimums exceed what is spare, every VM keeps its minimum and the
    shortfall is reported.
    """
    plan = HarvestPlan()
    vms = [i for i in instances if i.server == spare.server and i.pool == "harvest"]
    ranges = {instance_key(i): core_range(hints_for(i.tenant, i.workload), i.cores) for i in vms}
    minimums = sum(low for low, _ in ranges.values())
    left = spare.spare_cores - minimums
    if left < 0:
        plan.short_cores = -left
        plan.log.append(
            f"{spare.server}: {spare.spare_cores} spare cores, minimums need {minimums}: all stay at "
            f"their minimum"
        )
        left = 0

    def rank(instance: Instance) -> tuple[int, str]:
        priority = hints_for(instance.tenant, instance.workload).get("priority")
        level = getattr(priority, "level", "normal")
        return -PRIORITY_COST[level], instance_key(instance)

    for instance in sorted(vms, key=rank):
        low, high = ranges[instance_key(instance)]
        extra = min(high - low, left)
        left -= extra
        plan.cores[instance_key(instance)] = low + extra
        plan.log.append(f"{instance_key(instance)}: {low + extra} cores (range {low}-{high})")
    return plan
