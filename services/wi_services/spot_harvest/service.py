"""The Spot/Harvest manager as a platform service: capacity pressure in, eviction notices out; spare
capacity in, Harvest resizes out; flexible workloads in, cost offers out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from wi.contract import (
    CapacityPressure,
    CostOffer,
    Eviction,
    Family,
    HintBase,
    Message,
    NoticeState,
    Placement,
    Pool,
    Resize,
    SpareCapacity,
    Verdict,
    derived_id,
)
from wi.engine import (
    Decision,
    InstanceReleased,
    InstanceResized,
    Inventory,
    PlatformService,
    ServiceContext,
    View,
)

from .harvest import share_spare_cores
from .offers import (
    OFFER_HINT_KINDS,
    answerable_until,
    declined_until,
    eligible_offers,
    offer_expires_at,
)
from .policy import EvictionRanking, plan_ranked_evictions

NAME = "spot-harvest"
ANSWERED = frozenset({NoticeState.ACKED, NoticeState.ACCEPTED, NoticeState.DECLINED})
"""The verdicts the manager acts on: an eviction acked, an offer accepted or declined."""


class SpotHarvestManager(PlatformService):
    """Evicts under capacity pressure keeping every notice promise, resizes Harvest VMs, makes cost offers."""

    name: ClassVar[str] = NAME
    consumes: ClassVar[tuple[Family, ...]] = (Family.EVENT, Family.VERDICT, Family.HINT, Family.NOTICE)
    needs_inventory: ClassVar[bool] = True

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.evicting: dict[str, str] = {}
        """Eviction notice id to the instance it evicts, while an ack to it may still evict early: until
        the ack is acted on, or until the next eviction finds the instance gone from the inventory (its
        deadline passed, its deployment ended). Which instances not to evict again the inventory tells
        (``Inventory.leaving``): each notice's release is in it until the instance has gone."""
        self.harvest_cores: dict[str, int] = {}
        """Harvest VM to the cores it was last resized to, while it runs: the next resize forgets the VMs
        gone from the inventory (instance keys are never reused, so none is looked up again)."""
        self.offers: dict[str, tuple[str, CostOffer]] = {}
        """Cost offer's notice id to (offer name, the offer), until it is answered, or, unanswered, until
        a verdict on it is no longer acted on (``answerable_until``): the next offer forgets those."""
        self.declined: dict[tuple[str, str, str], datetime] = {}
        """(tenant, workload, offer) to the time before which it is not offered again, while that time is
        ahead: the next decline forgets those that have passed."""
        self.accepted: dict[tuple[str, str, str], float] = {}
        """(tenant, workload, offer) to the discount taken, in percent."""
        self._rankings: dict[tuple[str, Pool], EvictionRanking] = {}
        """(cluster, pool) to its evictable instances in eviction order, as of the last pressure event on
        it: a cache, not state (each event brings it in step with the inventory and the hints in effect,
        and decides as a ranking built anew would), so that an event re-ranks only what changed."""

    def wants(self, message: Message) -> bool:
        if isinstance(message, CapacityPressure | SpareCapacity):
            return True
        if isinstance(message, HintBase):
            return message.instance is None and message.subject_kind in OFFER_HINT_KINDS
        if isinstance(message, Placement):
            return message.outcome == "placed"
        # Every settled answer: the notice may be another process's; decide knows after catching up.
        return isinstance(message, Verdict) and message.state in ANSWERED

    def concerns(self, message: Message, inventory: Inventory) -> set[tuple[str, str]]:
        """Pressure: the workloads in the pressured cluster and pool; spare capacity: those on the server;
        anything else: the workload it is about."""
        if isinstance(message, CapacityPressure):
            touched = inventory.in_cell(message.cluster, message.pool)
        elif isinstance(message, SpareCapacity):
            touched = [i for i in inventory if i.server == message.server]
        else:
            touched = []
        return super().concerns(message, inventory) | {(i.tenant, i.workload) for i in touched}

    def reset(self) -> None:
        self.evicting = {}
        self.harvest_cores = {}
        self.offers = {}
        self.declined = {}
        self.accepted = {}
        self._rankings = {}

    def apply(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            detail = decision.detail
            if decision.action == "notify":
                _forget(self.evicting, detail)
                self.evicting[detail["notice_id"]] = detail["instance"]
            elif decision.action == "evict":  # done with (a log from before may evict a notice twice)
                self.evicting.pop(detail["notice_id"], None)
            elif decision.action == "resize":
                _forget(self.harvest_cores, detail)
                self.harvest_cores[detail["instance"]] = detail["cores"]
            elif decision.action == "offer":
                _forget(self.offers, detail)
                offer = decision.notices[0]
                assert isinstance(offer, CostOffer)
                self.offers[offer.notice_id] = (detail["offer"], offer)
            elif decision.action in ("accept", "decline"):
                name, offer = self.offers.pop(detail["notice_id"])
                key = (offer.tenant, offer.workload, name)
                if decision.action == "accept":
                    self.accepted[key] = offer.discount_pct
                elif decision.action == "decline":
                    _forget(self.declined, detail, tuple)  # keys stored as JSON lists
                    self.declined[key] = datetime.fromisoformat(detail["until"])

    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        if isinstance(message, CapacityPressure):
            return self._relieve(message, view, now)
        if isinstance(message, SpareCapacity):
            return self._resize(message, view, now)
        if isinstance(message, HintBase | Placement):
            return self._offer(message.tenant, message.workload, message.message_id, view, now)
        if not isinstance(message, Verdict):
            return []
        offered = self.offers.get(message.notice_id)
        if offered is not None and message.state is not NoticeState.ACKED:
            # Past the grace it is no longer acted on, whether or not the next offer has forgotten it yet.
            return [self._answer(message, view, now)] if now < answerable_until(offered[1].expires_at) else []
        if message.notice_id in self.evicting and message.state is NoticeState.ACKED:
            instance = self.evicting[message.notice_id]
            tenant, workload, name = instance.split("/")
            gone = InstanceReleased(
                tenant=tenant, workload=workload, instance=name, at=now, why="evicted, acked"
            )
            return [
                self.decision(
                    input_id=message.verdict_id,
                    index=0,
                    action="evict",
                    summary=f"{instance}: acked, evicting now",
                    reasons=("the workload acked the eviction notice",),
                    changes=(gone,),
                    tenant=message.tenant,
                    workload=message.workload,
                    detail={"notice_id": message.notice_id, "instance": instance},
                )
            ]
        return []

    def _relieve(self, pressure: CapacityPressure, view: View, now: datetime) -> list[Decision]:
        here = view.inventory.in_cell(pressure.cluster, pressure.pool)
        ranking = self._rankings.setdefault((pressure.cluster, pressure.pool), EvictionRanking())
        kept = ranking.update(here, view.hints_for)
        plan = plan_ranked_evictions(pressure, ranking.ranked, kept, view.inventory.leaving, now)
        reasons = tuple(plan.log)  # one tuple that every decision of the event shares
        # Notices whose instance no longer runs: an ack to them has nothing left to evict. The first
        # eviction records them, so that ``apply`` (live and at a restart alike) forgets them.
        gone = [n for n, key in self.evicting.items() if key not in view.inventory.instances]
        decisions = []
        for index, eviction in enumerate(plan.evictions):
            instance = eviction.instance
            notice = Eviction(
                issued_at=now,
                tenant=instance.tenant,
                workload=instance.workload,
                instance=instance.instance,
                notice_id=derived_id("evict", pressure.event_id, index),
                not_before=eviction.not_before,
                reason=eviction.reason[:500],
            )
            decisions.append(
                self.decision(
                    input_id=pressure.event_id,
                    index=index,
                    action="notify",
                    summary=f"{instance.key}: evict no earlier than {eviction.not_before:%H:%M:%S}",
                    reasons=reasons,
                    notices=(notice,),
                    changes=(
                        InstanceReleased(
                            tenant=instance.tenant,
                            workload=instance.workload,
                            instance=instance.instance,
                            at=eviction.not_before,
                            why="evicted",
                        ),
                    ),
                    tenant=instance.tenant,
                    workload=instance.workload,
                    detail={
                        "notice_id": notice.notice_id,
                        "instance": instance.key,
                        **({"forget": gone} if index == 0 and gone else {}),
                    },
                )
            )
        if plan.short_cores or plan.short_in_time_cores:
            decisions.append(
                self.alert(
                    pressure.event_id,
                    len(decisions),
                    reasons,
                    f"operator: {pressure.cluster}/{pressure.pool} needs {pressure.cores_needed} cores "
                    f"within {pressure.needed_within_s} s; {plan.short_in_time_cores} come later to keep "
                    f"notice promises, {plan.short_cores} cannot be freed",
                )
            )
        return decisions

    def _resize(self, spare: SpareCapacity, view: View, now: datetime) -> list[Decision]:
        plan = share_spare_cores(spare, view.instances, view.hints_for)
        # Harvest VMs no longer running: the first resize records them, so that ``apply`` (live and at a
        # restart alike) forgets their cores.
        gone = [key for key in self.harvest_cores if key not in view.inventory.instances]
        decisions: list[Decision] = []
        for instance in view.instances:
            key = instance.key
            if key not in plan.cores:
                continue
            before, after = self.harvest_cores.get(key, instance.cores), plan.cores[key]
            if after == before:
                continue
            hints = view.hints_for(instance.tenant, instance.workload, instance.instance)
            notice_s = 0 if after > before else hints.min_notice_s
            notice = Resize(
                issued_at=now,
                tenant=instance.tenant,
                workload=instance.workload,
                instance=instance.instance,
                notice_id=derived_id("resize", spare.event_id, len(decisions)),
                cores=after,
                memory_gb=instance.memory_gb,
                effective_at=now + timedelta(seconds=notice_s),
            )
            decisions.append(
                self.decision(
                    input_id=spare.event_id,
                    index=len(decisions),
                    action="resize",
                    summary=f"{key}: {before} -> {after} cores",
                    reasons=plan.log,
                    notices=(notice,),
                    changes=(
                        InstanceResized(
                            tenant=instance.tenant,
                            workload=instance.workload,
                            instance=instance.instance,
                            cores=after,
                            at=notice.effective_at,
                        ),
                    ),
                    tenant=instance.tenant,
                    workload=instance.workload,
                    detail={
                        "instance": key,
                        "cores": after,
                        **({"forget": gone} if not decisions and gone else {}),
                    },
                )
            )
        if plan.short_cores:
            decisions.append(
                self.alert(
                    spare.event_id,
                    len(decisions),
                    plan.log,
                    f"operator: {spare.server} lacks {plan.short_cores} cores for its Harvest VMs' minimums",
                )
            )
        return decisions

    def _offer(self, tenant: str, workload: str, input_id: str, view: View, now: datetime) -> list[Decision]:
        """Cost offers for the flexibility a workload's hints show but its price does not reflect."""
        hints = view.hints_for(tenant, workload)
        terms, log = eligible_offers(tenant, workload, hints, view.instances, self.fleet, now)
        # Offers no verdict is acted on any more: the first offer records them, so that ``apply`` (live
        # and at a restart alike) forgets them.
        lapsed = [n for n, (_, o) in self.offers.items() if now >= answerable_until(o.expires_at)]
        decisions: list[Decision] = []
        for offer in terms:
            key = (tenant, workload, offer.offer)
            if any((o.tenant, o.workload, n) == key and now < o.expires_at for n, o in self.offers.values()):
                continue  # one open offer of a kind at a time; a lapsed one may be made again
            if key in self.accepted:
                continue
            if key in self.declined and now < self.declined[key]:
                log.append(
                    f"{offer.offer}: declined; not offered again before {self.declined[key]:%Y-%m-%d %H:%M}"
                )
                continue
            notice_id = derived_id("offer", input_id, len(decisions))
            commit = [
                hint.model_copy(update={"hint_id": derived_id(notice_id, "commit", i)})
                for i, hint in enumerate(offer.commit)
            ]
            notice = CostOffer(
                tenant=tenant,
                workload=workload,
                issued_at=now,
                notice_id=notice_id,
                offer_id=notice_id,
                commit=commit,
                discount_pct=offer.discount_pct,
                expires_at=offer_expires_at(now),
            )
            decisions.append(
                self.decision(
                    input_id=input_id,
                    index=len(decisions),
                    action="offer",
                    summary=f"{tenant}/{workload}: {offer.offer} offer, {offer.discount_pct}% off if it "
                    f"commits {', '.join(h.kind for h in commit)}; open until {notice.expires_at:%H:%M:%S}",
                    reasons=(*log, offer.reason),
                    notices=(notice,),
                    tenant=tenant,
                    workload=workload,
                    detail={
                        "notice_id": notice_id,
                        "offer": offer.offer,
                        **({"forget": lapsed} if not decisions and lapsed else {}),
                    },
                )
            )
        return decisions

    def _answer(self, verdict: Verdict, view: View, now: datetime) -> Decision:
        """Takes an accepted offer (committing the hints and the price) or a declined one (remembered), as
        the registry judged the workload's answer."""
        name, offer = self.offers[verdict.notice_id]
        who = f"{offer.tenant}/{offer.workload}"

        def answered(
            action: str, summary: str, hints: tuple[HintBase, ...] = (), **detail: object
        ) -> Decision:
            return self.decision(
                input_id=verdict.verdict_id,
                index=0,
                action=action,
                summary=summary,
                reasons=(f"the registry judged the workload's {verdict.response}: {verdict.state}",),
                hints=hints,
                tenant=offer.tenant,
                workload=offer.workload,
                detail={"notice_id": offer.notice_id, **detail},
            )

        if verdict.state is NoticeState.DECLINED:
            until = declined_until(now)
            # Declines whose memory has lapsed (they no longer hold an offer back): recorded with this one,
            # so that ``apply`` (live and at a restart alike) forgets them.
            lapsed = [list(key) for key, before in self.declined.items() if now >= before]
            return answered(
                "decline",
                f"{who}: declined the {name} offer; not offered again before {until:%Y-%m-%d %H:%M}",
                until=until.isoformat(),
                forget=lapsed,
            )
        commit = tuple(
            hint.model_copy(update={"issued_at": now, "hint_id": derived_id(verdict.verdict_id, "commit", i)})
            for i, hint in enumerate(offer.commit)
        )
        before = sum(
            i.cores * self.fleet.price_per_core_hour(self.fleet.server(i.server))
            for i in view.instances
            if (i.tenant, i.workload) == (offer.tenant, offer.workload)
        )
        after = before * (1 - offer.discount_pct / 100)
        return answered(
            "accept",
            f"{who}: accepted the {name} offer: {offer.discount_pct}% off, {before:.4f} -> {after:.4f} "
            f"per hour; committed {', '.join(h.kind for h in commit)}",
            commit,
            discount_pct=offer.discount_pct,
            price_per_hour=[round(before, 6), round(after, 6)],
        )


def _forget(
    table: dict[Any, Any], detail: Mapping[str, Any], key: Callable[[Any], Any] = lambda k: k
) -> None:
    """Drops the entries a decision lists under ``forget``: the pruning it decided, applied alike live and
    when the log is replayed at a restart."""
    for entry in detail.get("forget", ()):
        del table[key(entry)]
