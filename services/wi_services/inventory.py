"""What runs where: a read model of the instances the allocator placed, built from its decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wi.audit import Decision
from wi.contract import DeploymentRequest, Pool

from .fleet import Fleet


@dataclass(frozen=True)
class Instance:
    """One running instance of a deployment."""

    tenant: str
    workload: str
    deployment: str
    instance: str
    """Its id: <deployment>-<n>, n counting the deployment's instances in placement order."""
    server: str
    cluster: str
    pool: Pool
    cores: int
    memory_gb: float


def inventory_from(placements: Sequence[Decision], fleet: Fleet) -> tuple[Instance, ...]:
    """The instances placed by the allocator's ``place`` decisions (oldest first)."""
    servers = {s.id: s for s in fleet.servers}
    instances: list[Instance] = []
    for decision in placements:
        if decision.action != "place":
            continue
        request = DeploymentRequest.model_validate(decision.detail["request"])
        for n, server_id in enumerate(decision.detail["servers"]):
            server = servers[server_id]
            instances.append(
                Instance(
                    request.tenant,
                    request.workload,
                    request.deployment,
                    f"{request.deployment}-{n}",
                    server.id,
                    server.cluster,
                    server.pool,
                    request.cores,
                    request.memory_gb,
                )
            )
    return tuple(instances)
