"""How a server's spare cores are shared among its Harvest VMs: a pure function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wi.contract import SpareCapacity
from wi.engine import HintsLookup, Instance


@dataclass
class HarvestPlan:
    """The cores each Harvest VM on the server gets, and what could not be met."""

    cores: dict[str, int] = field(default_factory=dict)
    """Instance key to its new number of cores."""
    log: list[str] = field(default_factory=list)
    short_cores: int = 0
    """Cores the minimums need beyond what is spare: the platform must evict to free them."""


def share_spare_cores(
    spare: SpareCapacity, instances: Sequence[Instance], hints_for: HintsLookup
) -> HarvestPlan:
    """Gives every Harvest VM on the server its minimum, then the rest up to each maximum, by priority.

    Each VM's range and priority are its own hints' (an instance's hint overrides its workload's). Never
    below a minimum: when the minimums exceed what is spare, every VM keeps its minimum and the shortfall
    is reported.
    """
    plan = HarvestPlan()
    vms = [i for i in instances if i.server == spare.server and i.pool == "harvest"]
    hints = {i.key: hints_for(i.tenant, i.workload, i.instance) for i in vms}
    ranges = {i.key: hints[i.key].core_range(i.cores) for i in vms}
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
        return -hints[instance.key].priority_rank, instance.key

    for instance in sorted(vms, key=rank):
        low, high = ranges[instance.key]
        extra = min(high - low, left)
        left -= extra
        plan.cores[instance.key] = low + extra
        plan.log.append(f"{instance.key}: {low + extra} cores (range {low}-{high})")
    return plan
