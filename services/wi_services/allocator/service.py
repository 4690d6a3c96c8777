"""The VM allocator as a platform service: deployment requests, scales and ends in; placement notices and
inventory changes out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from wi.contract import (
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    Family,
    Message,
    Placement,
    derived_id,
)
from wi.engine import (
    Decision,
    Instance,
    InstancePlaced,
    InstanceReleased,
    Inventory,
    PlatformService,
    ServiceContext,
    View,
    instance_name,
)

from .columns import FleetColumns, Usage
from .policy import Goal, place, where_placed

ACTIONS = {"placed": "place", "deferred": "defer", "rejected": "reject"}
"""The audit action of each placement outcome."""


class VmAllocator(PlatformService):
    """Places deployment requests by their workloads' hints (see ``policy.place``) on what the inventory
    says is free; a scale-out places more of the deployment's size the same way, a scale-in or an end
    releases the newest instances."""

    name: ClassVar[str] = "allocator"
    consumes: ClassVar[tuple[Family, ...]] = (Family.DEPLOYMENT,)
    needs_inventory: ClassVar[bool] = True

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.goal = Goal(context.placement_goal)
        self.columns = FleetColumns.of(self.fleet)
        self._servers = {server.id: server for server in self.fleet.servers}
        """Server id to server: a placement reads its chosen servers' cluster and pool without a scan."""
        self._usage = Usage.empty(self.columns)
        self._synced: tuple[Inventory | None, int] = (None, 0)
        """The inventory ``_usage`` mirrors, and how far (its version)."""

    def reset(self) -> None:
        """Nothing of its own: what is booked is the inventory."""

    def apply(self, decisions: Sequence[Decision]) -> None:
        """Nothing of its own: its placements reach the inventory as changes."""

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        if isinstance(message, DeploymentRequest):
            return [self._place(message, view, now)]
        assert isinstance(message, DeploymentScale | DeploymentEnd)
        running = view.inventory.of_deployment(message.tenant, message.workload, message.deployment)
        wanted = message.instances if isinstance(message, DeploymentScale) else 0
        if wanted <= len(running):
            return [self._release(message, running[wanted:], len(running), now)]
        if not running:
            return [self._nothing_to_scale(message)]
        size = running[0]  # a deployment's instances all have the size its request asked for
        more = DeploymentRequest(
            tenant=message.tenant,
            workload=message.workload,
            request_id=message.request_id,
            issued_at=message.issued_at,
            deployment=message.deployment,
            instances=wanted - len(running),
            cores=size.cores,
            memory_gb=size.memory_gb,
            gpus=size.gpus,
        )
        return [self._place(more, view, now)]

    def _release(
        self, message: DeploymentScale | DeploymentEnd, going: list[Instance], running: int, now: datetime
    ) -> Decision:
        """Frees the instances a scale-in or an end lets go (the newest), from ``now`` on."""
        why = (
            "deployment ended"
            if isinstance(message, DeploymentEnd)
            else f"scaled in to {running - len(going)}"
        )
        return self.decision(
            input_id=message.request_id,
            index=0,
            action="release",
            summary=f"{message.deployment}: {why}; {len(going)} of {running} instance(s) released",
            reasons=[f"release {i.instance} on {i.server}" for i in going] or ["nothing to release"],
            changes=[
                InstanceReleased(tenant=i.tenant, workload=i.workload, instance=i.instance, at=now, why=why)
                for i in going
            ],
            tenant=message.tenant,
            workload=message.workload,
        )

    def _nothing_to_scale(self, message: DeploymentScale | DeploymentEnd) -> Decision:
        """A scale-out of a deployment that runs nothing: its size is unknown, so it is rejected."""
        notice = Placement(
            tenant=message.tenant,
            workload=message.workload,
            notice_id=derived_id("placement", message.request_id, 0),
            issued_at=message.issued_at,
            deployment=message.deployment,
            outcome="rejected",
            reason="the deployment runs no instance to scale out from; send a deployment request",
        )
        return self.decision(
            input_id=message.request_id,
            index=0,
            action="reject",
            summary=f"{message.deployment}: nothing runs to scale out from",
            notices=(notice,),
            tenant=message.tenant,
            workload=message.workload,
        )

    def _place(self, message: DeploymentRequest, view: View, now: datetime) -> Decision:
        hints = view.hints_for(message.tenant, message.workload)
        first = view.inventory.next_index(message.tenant, message.workload, message.deployment)
        usage = self.usage(view.inventory)
        placed = place(self.columns, usage, message, hints, now, self.goal, first)
        notice = placed.notice
        where = f" {where_placed(notice.instances)}" if notice.outcome == "placed" else ""
        servers = [self._servers[s] for s in placed.servers]
        changes = [
            InstancePlaced(
                tenant=message.tenant,
                workload=message.workload,
                deployment=message.deployment,
                instance=instance_name(message.deployment, first + n),
                server=server.id,
                cluster=server.cluster,
                pool=server.pool,
                cores=message.cores,
                memory_gb=message.memory_gb,
                gpus=message.gpus,
            )
            for n, server in enumerate(servers)
        ]
        return self.decision(
            input_id=message.request_id,
            index=0,
            action=ACTIONS[notice.outcome],
            summary=f"{message.deployment}: {notice.outcome}{where}",
            reasons=placed.log,
            notices=(notice,),
            changes=changes,
            tenant=message.tenant,
            workload=message.workload,
            detail={"servers": placed.servers},
        )

    def usage(self, inventory: Inventory) -> Usage:
        """What the inventory says is used on each server, as the policy's arrays.

        A cache of the inventory, kept in step by the changes of use since it last looked (or rebuilt,
        for another inventory or one too far ahead), so each decision costs only what changed.
        """
        mirrored, version = self._synced
        changes = inventory.changes_since(version) if mirrored is inventory else None
        if changes is None:
            self._usage = Usage.of(self.columns, inventory.use)
        else:
            for server, change in changes:
                self._usage.add(self.columns.index[server], change)
        self._synced = (inventory, inventory.version)
        return self._usage
