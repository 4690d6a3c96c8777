"""What a runner hands a service in its ``View``, built for tests on constructed states."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from wi.contract import HintBase, utc_now
from wi.engine import Instance, InstancePlaced, Inventory, View
from wi.registry import EffectiveHints, effective_hints


def effective(*hints: HintBase) -> dict[tuple[str, str], EffectiveHints]:
    """Each workload's hints in effect, as the registry resolves them (an instance's own hints override)."""
    by_workload: defaultdict[tuple[str, str], list[HintBase]] = defaultdict(list)
    for hint in hints:
        by_workload[(hint.tenant, hint.workload)].append(hint)
    now = utc_now()
    return {key: effective_hints(*key, said, now) for key, said in by_workload.items()}


def view(
    hints: Mapping[tuple[str, str], EffectiveHints] | None = None, instances: Sequence[Instance] = ()
) -> View:
    """A service's view of hints in effect and of instances running (an inventory of just those)."""
    inventory = Inventory()
    inventory.apply(
        InstancePlaced(
            tenant=i.tenant,
            workload=i.workload,
            deployment=i.deployment,
            instance=i.instance,
            server=i.server,
            cluster=i.cluster,
            pool=i.pool,
            cores=i.cores,
            memory_gb=i.memory_gb,
            gpus=i.gpus,
        )
        for i in instances
    )
    return View(dict(hints or {}), inventory)
