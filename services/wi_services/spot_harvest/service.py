"""The Spot/Harvest manager as a platform service: capacity pressure in, eviction notices out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from wi.audit import Decision
from wi.contract import Ack, CapacityPressure, Eviction, Family, Message, Resize, SpareCapacity

from ..plugin import PlatformService, ServiceContext, View
from .harvest import share_spare_cores
from .policy import DEFAULT_MIN_NOTICE_S, instance_key, min_notice_s, plan_evictions

NAME = "spot-harvest"


class SpotHarvestManager(PlatformService):
    """Evicts spot and harvest instances under capacity pressure, keeping every workload's notice promise."""

    name: ClassVar[str] = NAME
    consumes: ClassVar[tuple[Family, ...]] = (Family.EVENT, Family.RESPONSE)
    needs_inventory: ClassVar[bool] = True

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.evicting: dict[str, str] = {}
        """Eviction notice id to the instance it evicts."""
        self.harvest_cores: dict[str, int] = {}
        """Harvest VM to the cores it was last resized to."""

    def wants(self, message: Message) -> bool:
        if isinstance(message, CapacityPressure | SpareCapacity):
            return True
        return isinstance(message, Ack) and message.notice_id in self.evicting

    def reset(self) -> None:
        self.evicting = {}
        self.harvest_cores = {}

    def apply(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            if decision.action == "notify":
                self.evicting[decision.detail["notice_id"]] = decision.detail["instance"]
            elif decision.action == "resize":
                self.harvest_cores[decision.detail["instance"]] = decision.detail["cores"]

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        if isinstance(message, CapacityPressure):
            return self._relieve(message, view, now)
        if isinstance(message, SpareCapacity):
            return self._resize(message, view, now)
        if isinstance(message, Ack) and message.notice_id in self.evicting:
            instance = self.evicting[message.notice_id]
            return [
                Decision(
                    service=self.name,
                    input_id=message.response_id,
                    index=0,
                    action="evict",
                    summary=f"{instance}: acked, evicting now",
                    reasons=(message.reason or "ready",),
                    tenant=message.tenant,
                    workload=message.workload,
                    detail={"notice_id": message.notice_id, "instance": instance},
                )
            ]
        return []

    def _relieve(self, pressure: CapacityPressure, view: View, now: datetime) -> list[Decision]:
        plan = plan_evictions(
            pressure, view.instances, view.hints_for, frozenset(self.evicting.values()), now
        )
        decisions = []
        for index, eviction in enumerate(plan.evictions):
            instance = eviction.instance
            notice = Eviction(
                issued_at=now,
                tenant=instance.tenant,
                workload=instance.workload,
                instance=instance.instance,
                notice_id=f"evict-{pressure.event_id}-{index}",
                not_before=eviction.not_before,
                reason=eviction.reason[:500],
            )
            decisions.append(
                Decision(
                    service=self.name,
                    input_id=pressure.event_id,
                    index=index,
                    action="notify",
                    summary=f"{instance_key(instance)}: evict no earlier than {eviction.not_before:%H:%M:%S}",
                    reasons=tuple(plan.log),
                    notices=(notice,),
                    tenant=instance.tenant,
                    workload=instance.workload,
                    detail={"notice_id": notice.notice_id, "instance": instance_key(instance)},
                )
            )
        if plan.short_cores or plan.short_in_time_cores:
            decisions.append(
                self._alert(
                    pressure.event_id,
                    len(decisions),
                    plan.log,
                    f"operator: {pressure.cluster}/{pressure.pool} needs {pressure.cores_needed} cores "
                    f"within {pressure.needed_within_s} s; {plan.short_in_time_cores} come later to keep "
                    f"notice promises, {plan.short_cores} cannot be freed",
                )
            )
        return decisions

    def _resize(self, spare: SpareCapacity, view: View, now: datetime) -> list[Decision]:
        plan = share_spare_cores(spare, view.instances, view.hints_for)
        decisions: list[Decision] = []
        for instance in view.instances:
            key = instance_key(instance)
            if key not in plan.cores:
                continue
            before, after = self.harvest_cores.get(key, instance.cores), plan.cores[key]
            if after == before:
                continue
            hints = view.hints_for(instance.tenant, instance.workload)
            notice_s = 0 if after > before else (min_notice_s(hints) or DEFAULT_MIN_NOTICE_S)
            notice = Resize(
                issued_at=now,
                tenant=instance.tenant,
                workload=instance.workload,
                instance=instance.instance,
                notice_id=f"resize-{spare.event_id}-{len(decisions)}",
                cores=after,
                memory_gb=instance.memory_gb,
                effective_at=now + timedelta(seconds=notice_s),
            )
            decisions.append(
                Decision(
                    service=self.name,
                    input_id=spare.event_id,
                    index=len(decisions),
                    action="resize",
                    summary=f"{key}: {before} -> {after} cores",
                    reasons=tuple(plan.log),
                    notices=(notice,),
                    tenant=instance.tenant,
                    workload=instance.workload,
                    detail={"instance": key, "cores": after},
                )
            )
        if plan.short_cores:
            decisions.append(
                self._alert(
                    spare.event_id,
                    len(decisions),
                    plan.log,
                    f"operator: {spare.server} lacks {plan.short_cores} cores for its Harvest VMs' minimums",
                )
            )
        return decisions

    def _alert(self, input_id: str, index: int, log: list[str], summary: str) -> Decision:
        """A decision with no notice: something the operator must see, with the steps that led to it."""
        return Decision(
            service=self.name,
            input_id=input_id,
            index=index,
            action="alert",
            summary=summary,
            reasons=tuple(log),
        )
