"""The VM allocator as a platform service: deployment requests in, placement notices out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from wi.audit import Decision
from wi.contract import DeploymentRequest, Family, Message

from ..plugin import ALLOCATOR, PlatformService, ServiceContext, View
from .policy import Goal, place
from .steps import Usage

ACTIONS = {"placed": "place", "deferred": "defer", "rejected": "reject"}
"""The audit action of each placement outcome."""


class VmAllocator(PlatformService):
    """Places deployment requests by their workloads' hints (see ``policy.place``)."""

    name: ClassVar[str] = ALLOCATOR
    consumes: ClassVar[tuple[Family, ...]] = (Family.DEPLOYMENT,)

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.goal = Goal(context.placement_goal)
        self.usage = Usage()
        self._servers = {s.id: s for s in self.fleet.servers}

    def reset(self) -> None:
        self.usage = Usage()

    def apply(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            if decision.action == "place":
                booked = DeploymentRequest.model_validate(decision.detail["request"])
                for server in decision.detail["servers"]:
                    self.usage.take(self._servers[server], booked)

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        assert isinstance(message, DeploymentRequest)
        hints = view.hints_for(message.tenant, message.workload)
        placed = place(self.fleet, self.usage.copy(), message, hints, now, self.goal)
        notice = placed.notice.model_copy(update={"notice_id": f"placement-{message.request_id}"})
        action = ACTIONS[notice.outcome]
        return [
            self.decision(
                input_id=message.request_id,
                index=0,
                action=action,
                summary=f"{message.deployment}: {notice.outcome}"
                + (f" on {notice.pool} in {notice.region}" if notice.outcome == "placed" else ""),
                reasons=placed.log,
                notices=(notice,),
                tenant=message.tenant,
                workload=message.workload,
                detail={"request": message.model_dump(mode="json"), "servers": placed.servers},
            )
        ]
