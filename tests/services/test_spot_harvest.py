"""The Spot/Harvest manager: pure eviction plans, and evictions end to end."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from wi_sdk import Eviction, Received, WorkloadClient
from wi_services.spot_harvest import SpotHarvestManager, plan_evictions, share_spare_cores
from wi_services.spot_harvest.policy import EvictionRanking, plan_ranked_evictions

from tests.platform import Running, eventually
from tests.services.replay import through_the_log
from tests.services.views import effective, view
from wi.contract import (
    CapacityPressure,
    Evictability,
    HintBase,
    LatencyTolerance,
    Pool,
    Priority,
    Scaling,
    SpareCapacity,
    Verdict,
    derived_id,
)
from wi.engine import (
    Decision,
    DecisionLog,
    Instance,
    InstancePlaced,
    InstanceReleased,
    InstanceResized,
    Inventory,
    ServiceContext,
    WorkloadHints,
    load_fleet,
)
from wi.registry import EffectiveHints
from wi.simulate.platform import Platform

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _instance(workload: str, cores: int = 8, cluster: str = "c1", pool: Pool = Pool.SPOT) -> Instance:
    return Instance("acme", workload, "d", f"{workload}-0", f"{workload}-server", cluster, pool, cores, 32.0)


def _hints(**by_workload: list[HintBase]) -> dict[tuple[str, str], EffectiveHints]:
    return effective(*(hint for hints in by_workload.values() for hint in hints))


def _pressure(cores: int, within_s: int) -> CapacityPressure:
    return CapacityPressure(cluster="c1", pool="spot", cores_needed=cores, needed_within_s=within_s)


def _evictable(workload: str, notice_s: int, level: str = "normal") -> list[HintBase]:
    return [
        Evictability(tenant="acme", workload=workload, evictable=True, min_notice_s=notice_s),
        Priority(tenant="acme", workload=workload, level=level),
    ]


def test_the_least_costly_workloads_go_first_and_no_notice_is_shorter_than_promised() -> None:
    instances = [_instance("important"), _instance("cheap"), _instance("patient")]
    hints = _hints(
        important=_evictable("important", 60, "high"),
        cheap=_evictable("cheap", 60, "best_effort"),
        patient=_evictable("patient", 600, "low"),
    )
    plan = plan_evictions(_pressure(16, within_s=120), instances, view(hints).hints_for, frozenset(), NOW)
    assert [e.instance.workload for e in plan.evictions] == ["cheap", "important"]
    for eviction in plan.evictions:
        promised = view(hints).hints_for("acme", eviction.instance.workload).min_notice_s
        assert eviction.not_before - NOW >= timedelta(seconds=promised)
    assert (plan.short_cores, plan.short_in_time_cores) == (0, 0)


def test_an_immediate_need_keeps_the_promise_and_reports_the_shortfall() -> None:
    instances = [_instance("slow", cores=16)]
    hints = _hints(slow=_evictable("slow", 300))
    plan = plan_evictions(_pressure(16, within_s=0), instances, view(hints).hints_for, frozenset(), NOW)
    [eviction] = plan.evictions
    assert eviction.not_before == NOW + timedelta(seconds=300)
    assert plan.short_in_time_cores == 16 and "its min_notice_s is 300" in plan.log[0]


def test_workloads_that_did_not_say_they_are_evictable_are_kept() -> None:
    instances = [_instance("silent"), _instance("web", cluster="c2")]
    plan = plan_evictions(_pressure(8, within_s=60), instances, view({}).hints_for, frozenset(), NOW)
    assert plan.evictions == [] and plan.short_cores == 8
    assert plan.log == ["acme/silent/silent-0: not evictable (no evictable hint); kept"]


def test_latency_tolerance_breaks_ties_in_priority() -> None:
    instances = [_instance("strict"), _instance("tolerant")]
    hints = _hints(
        strict=[
            *_evictable("strict", 30),
            LatencyTolerance(tenant="acme", workload="strict", latency_class="strict"),
        ],
        tolerant=[
            *_evictable("tolerant", 30),
            LatencyTolerance(tenant="acme", workload="tolerant", latency_class="tolerant"),
        ],
    )
    plan = plan_evictions(_pressure(8, 60), instances, view(hints).hints_for, frozenset(), NOW)
    assert [e.instance.workload for e in plan.evictions] == ["tolerant"]


async def test_pressure_evicts_with_the_promised_notice_and_an_ack_lets_it_go_early(running: Running) -> None:
    evictions: list[Received[Eviction]] = []
    async with WorkloadClient(
        tenant="acme", workload="batch", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(Eviction)
        async def ready(notice: Received[Eviction]) -> None:
            evictions.append(notice)
            await notice.ack(reason="checkpoint saved")

        client.start()
        await client.hint(client.new(Evictability, evictable=True, min_notice_s=120))
        await client.deploy(deployment="train", instances=1, cores=16, memory_gb=64)
        assert running.platform.store is not None
        audit = DecisionLog(running.platform.store.engine)
        await eventually(lambda: audit.recent("allocator"))
        [placed] = audit.recent("allocator")
        cluster = placed.detail["servers"][0].split("-")[0]
        await running.bus.publish(
            CapacityPressure(cluster=cluster, pool="spot", cores_needed=16, needed_within_s=30)
        )
        await eventually(lambda: evictions)
        left = evictions[0].time_left()
        assert left is not None and timedelta(seconds=110) < left <= timedelta(seconds=120)
        await eventually(lambda: any(d.action == "evict" for d in audit.recent("spot-harvest")))
    actions = [d.action for d in reversed(audit.recent("spot-harvest"))]
    assert actions[:2] == ["notify", "alert"] and actions[-1] == "evict"


def _harvest_vm(workload: str, cores: int = 8) -> Instance:
    return Instance("acme", workload, "d", f"{workload}-0", "h1", "c1", Pool.HARVEST, cores, 32.0)


def _scaling(workload: str, low: int, high: int, level: str = "normal") -> list[HintBase]:
    return [
        Scaling(tenant="acme", workload=workload, stateless=True, min_cores=low, max_cores=high),
        Priority(tenant="acme", workload=workload, level=level),
    ]


def test_spare_cores_go_to_minimums_first_then_by_priority_up_to_each_maximum() -> None:
    vms = [_harvest_vm("low"), _harvest_vm("high")]
    hints = _hints(low=_scaling("low", 4, 32, "low"), high=_scaling("high", 4, 16, "high"))
    plan = share_spare_cores(
        SpareCapacity(server="h1", spare_cores=30, spare_memory_gb=100),
        vms,
        view(hints).hints_for,
    )
    assert plan.cores == {"acme/high/high-0": 16, "acme/low/low-0": 14} and plan.short_cores == 0


def test_harvest_never_goes_below_its_minimum() -> None:
    vms = [_harvest_vm("a"), _harvest_vm("b")]
    hints = _hints(a=_scaling("a", 6, 12), b=_scaling("b", 6, 12))
    plan = share_spare_cores(
        SpareCapacity(server="h1", spare_cores=8, spare_memory_gb=10), vms, view(hints).hints_for
    )
    assert plan.cores == {"acme/a/a-0": 6, "acme/b/b-0": 6} and plan.short_cores == 4


def test_resize_notices_grow_now_and_shrink_after_the_workloads_notice() -> None:
    from wi_services.spot_harvest import SpotHarvestManager

    from tests.services.views import view
    from wi.engine import ServiceContext, load_fleet

    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    vm = _harvest_vm("batch", cores=8)
    hints = _hints(
        batch=[
            *_scaling("batch", 4, 16),
            Evictability(tenant="acme", workload="batch", evictable=True, min_notice_s=90),
        ]
    )
    grow = manager.decide(
        SpareCapacity(server="h1", spare_cores=20, spare_memory_gb=50), view(hints, (vm,)), NOW
    )
    [(resize,)] = [d.notices for d in grow]
    assert (resize.cores, resize.effective_at) == (16, NOW)  # type: ignore[attr-defined]
    manager.apply(grow)
    same = manager.decide(
        SpareCapacity(server="h1", spare_cores=16, spare_memory_gb=50), view(hints, (vm,)), NOW
    )
    assert same == []
    shrink = manager.decide(
        SpareCapacity(server="h1", spare_cores=5, spare_memory_gb=50), view(hints, (vm,)), NOW
    )
    [(resize,)] = [d.notices for d in shrink]
    assert (resize.cores, resize.effective_at) == (5, NOW + timedelta(seconds=90))  # type: ignore[attr-defined]


def test_the_manager_wants_pressure_spare_capacity_and_verdicts_and_acts_on_its_own_notices_only() -> None:
    from wi_services.spot_harvest import SpotHarvestManager

    from tests.services.views import view
    from wi.contract import PowerCap, Verdict
    from wi.engine import Decision, ServiceContext, load_fleet

    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    assert manager.wants(_pressure(8, 60))
    assert manager.wants(SpareCapacity(server="h1", spare_cores=4, spare_memory_gb=8))
    assert not manager.wants(PowerCap(power_domain="row-1", cap_watts=1000))
    judged = {"tenant": "acme", "workload": "batch", "notice_id": "evict-e1-0", "notice_kind": "eviction"}
    deferred = Verdict(**judged, verdict_id="judged-r0", state="deferred", response="defer", response_id="r0")
    assert not manager.wants(deferred), "a deferral settles nothing to act on"
    ours = Verdict(**judged, verdict_id="judged-r1", state="acked", response="ack", response_id="r1")
    assert manager.wants(ours), "acks are wanted: another process of the service may have sent the notice"
    assert manager.decide(ours, view({}), NOW) == [], "an ack to a notice it does not know"
    manager.apply(
        [
            Decision(
                service="spot-harvest",
                input_id="e1",
                index=0,
                action="notify",
                summary="s",
                detail={"notice_id": "evict-e1-0", "instance": "acme/batch/train-0"},
            )
        ]
    )
    assert [d.action for d in manager.decide(ours, view({}), NOW)] == ["evict"]


def _of_batch(instance: str, pool: Pool = Pool.SPOT, server: str = "s1") -> Instance:
    return Instance("acme", "batch", "train", instance, server, "c1", pool, 8, 32.0)


def test_an_instance_that_says_it_is_not_evictable_is_kept_and_one_asking_more_notice_gets_it() -> None:
    batch = {"tenant": "acme", "workload": "batch"}
    hints = effective(
        Evictability(**batch, evictable=True, min_notice_s=60),
        Evictability(**batch, instance="train-0", evictable=False),
        Evictability(**batch, instance="train-1", evictable=True, min_notice_s=300),
    )
    instances = [_of_batch("train-0"), _of_batch("train-1"), _of_batch("train-2")]
    plan = plan_evictions(_pressure(24, within_s=60), instances, view(hints).hints_for, frozenset(), NOW)
    notices = {e.instance.instance: e.not_before - NOW for e in plan.evictions}
    assert notices == {"train-1": timedelta(seconds=300), "train-2": timedelta(seconds=60)}
    assert "acme/batch/train-0: not evictable (no evictable hint); kept" in plan.log
    assert (plan.short_cores, plan.short_in_time_cores) == (8, 8)


def test_a_harvest_vm_with_its_own_range_and_notice_is_resized_by_them() -> None:
    from wi_services.spot_harvest import SpotHarvestManager

    from wi.engine import ServiceContext, load_fleet

    batch = {"tenant": "acme", "workload": "batch"}
    hints = effective(
        Scaling(**batch, stateless=True, min_cores=4, max_cores=16),
        Evictability(**batch, evictable=True, min_notice_s=30),
        Scaling(**batch, instance="train-1", stateless=True, min_cores=8, max_cores=8),
        Evictability(**batch, instance="train-1", evictable=True, min_notice_s=240),
    )
    vms = (_of_batch("train-0", Pool.HARVEST, "h1"), _of_batch("train-1", Pool.HARVEST, "h1"))
    plan = share_spare_cores(
        SpareCapacity(server="h1", spare_cores=30, spare_memory_gb=50), vms, view(hints).hints_for
    )
    assert plan.cores == {"acme/batch/train-0": 16, "acme/batch/train-1": 8}

    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    manager.harvest_cores = {"acme/batch/train-0": 16, "acme/batch/train-1": 16}  # as if grown before
    shrink = manager.decide(
        SpareCapacity(server="h1", spare_cores=12, spare_memory_gb=50), view(hints, vms), NOW
    )
    effective_at = {d.detail["instance"]: d.notices[0].effective_at for d in shrink}  # type: ignore[attr-defined]
    assert effective_at == {
        "acme/batch/train-0": NOW + timedelta(seconds=30),
        "acme/batch/train-1": NOW + timedelta(seconds=240),
    }


async def test_under_pressure_the_platform_keeps_an_instance_that_says_it_is_not_evictable(
    running: Running,
) -> None:
    evictions: list[Eviction] = []
    async with WorkloadClient(
        tenant="acme", workload="batch", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(Eviction)
        async def noted(notice: Received[Eviction]) -> None:
            evictions.append(notice.notice)

        client.start()
        await client.hint(client.new(Evictability, evictable=True, min_notice_s=30))
        await client.deploy(deployment="train", instances=2, cores=16, memory_gb=64)
        assert running.platform.store is not None
        audit = DecisionLog(running.platform.store.engine)
        await eventually(lambda: audit.recent("allocator"))
        [placed] = audit.recent("allocator")
        assert placed.action == "place"
        await client.hint(client.new(Evictability, instance="train-0", evictable=False))
        cluster = placed.detail["servers"][0].split("-")[0]
        await running.bus.publish(
            CapacityPressure(cluster=cluster, pool="spot", cores_needed=32, needed_within_s=30)
        )
        await eventually(lambda: evictions)
        await eventually(lambda: any(d.action == "alert" for d in audit.recent("spot-harvest")))
    assert [e.instance for e in evictions] == ["train-1"]
    [alert] = [d for d in audit.recent("spot-harvest") if d.action == "alert"]
    assert "acme/batch/train-0: not evictable (no evictable hint); kept" in alert.reasons


def test_a_ranking_kept_across_events_ranks_as_one_built_anew_after_random_changes() -> None:
    rng = random.Random(7)
    inventory = Inventory()
    known: dict[str, WorkloadHints] = {}

    def hints_for(tenant: str, workload: str, instance: str | None = None) -> WorkloadHints:
        return known.get(workload, WorkloadHints())

    def new_hints() -> WorkloadHints:
        return WorkloadHints(
            evictable=rng.random() < 0.8,
            min_notice_s=rng.choice([30, 120, 600]),
            priority=rng.choice(["best_effort", "low", "normal", "high"]),
            latency_class=rng.choice(["tolerant", "moderate", "strict"]),
        )

    kept_ranking, placed = EvictionRanking(), 0
    for step in range(300):
        for _ in range(rng.randrange(0, 12)):  # placements, in two cells
            workload = f"w{rng.randrange(60)}"
            known.setdefault(workload, new_hints())
            inventory.apply(
                [
                    InstancePlaced(
                        tenant="acme",
                        workload=workload,
                        deployment="d",
                        instance=f"d-{placed}",
                        server=f"s{placed % 7}",
                        cluster=rng.choice(["c1", "c2"]),
                        pool=Pool.SPOT,
                        cores=rng.choice([1, 2, 4, 8]),
                        memory_gb=4.0,
                    )
                ]
            )
            placed += 1
        running = list(inventory)
        for instance in rng.sample(running, min(len(running), rng.randrange(0, 8))):  # releases, resizes
            at = NOW + timedelta(seconds=step)
            change = (
                InstanceResized(
                    tenant="acme", workload=instance.workload, instance=instance.instance, cores=3, at=at
                )
                if rng.random() < 0.2
                else InstanceReleased(
                    tenant="acme", workload=instance.workload, instance=instance.instance, at=at, why=""
                )
            )
            inventory.apply([change])
        inventory.advance(NOW + timedelta(seconds=step))
        for workload in rng.sample(sorted(known), 3):  # hints that change, or come again as another object
            known[workload] = new_hints() if rng.random() < 0.5 else replace(known[workload])
        here = inventory.in_cell("c1", Pool.SPOT)
        kept = kept_ranking.update(here, hints_for)
        anew = EvictionRanking()
        assert kept == anew.update(here, hints_for)
        assert kept_ranking.ranked == anew.ranked == sorted(anew.ranked)
        pressure = _pressure(rng.randrange(1, 40), within_s=rng.choice([30, 120]))
        leaving = {i.key for i in here[::5]}
        everywhere = list(inventory)
        assert plan_ranked_evictions(pressure, kept_ranking.ranked, kept, leaving, NOW) == plan_evictions(
            pressure, everywhere, hints_for, leaving, NOW
        )


def test_the_inventory_lists_a_cells_instances_without_a_scan_and_forgets_released_ones() -> None:
    inventory = Inventory()
    placed = [
        InstancePlaced(
            tenant="acme",
            workload=name,
            instance=f"{name}-0",
            deployment="d",
            server=f"{name}-server",
            cluster="c1",
            pool=pool,
            cores=8,
            memory_gb=32.0,
        )
        for name, pool in (("a", Pool.SPOT), ("b", Pool.REGULAR), ("c", Pool.SPOT))
    ]
    inventory.apply(placed)
    assert [i.workload for i in inventory.in_cell("c1", Pool.SPOT)] == ["a", "c"]
    inventory.apply([InstanceReleased(tenant="acme", workload="a", instance="a-0", at=NOW, why="evicted")])
    assert inventory.leaving == {"acme/a/a-0"} and len(inventory.in_cell("c1", Pool.SPOT)) == 2
    inventory.advance(NOW)
    assert [i.workload for i in inventory.in_cell("c1", Pool.SPOT)] == ["c"]
    assert not inventory.leaving
    assert inventory.in_cell("c2", Pool.SPOT) == []


def _placement(workload: str) -> InstancePlaced:
    return InstancePlaced(
        tenant="acme",
        workload=workload,
        deployment="d",
        instance="d-0",
        server="c1-spot-0",
        cluster="c1",
        pool=Pool.SPOT,
        cores=4,
        memory_gb=8.0,
    )


def _ack(notify: Decision) -> Verdict:
    """The registry's verdict on an ack of the notice a ``notify`` decision sent (a repeated ack is
    judged acked again: it agrees with how the notice was settled)."""
    [notice] = notify.notices
    response_id = derived_id("ack", notice.notice_id, 0)
    return Verdict(
        tenant=notice.tenant,
        workload=notice.workload,
        notice_id=notice.notice_id,
        notice_kind="eviction",
        verdict_id=derived_id("judged", response_id, 0),
        state="acked",
        response="ack",
        response_id=response_id,
    )


def _evictable_platform(*workloads: str) -> Platform:
    """Driven as the runner and the simulator drive a service: inventory brought to the input's time,
    then the state and the inventory moved on by each decision."""
    hints = WorkloadHints(evictable=True, min_notice_s=30)
    platform = Platform({workload: hints for workload in workloads})
    platform.inventory.apply(_placement(workload) for workload in workloads)
    return platform


def test_an_acked_eviction_is_done_with_and_the_ack_repeated_evicts_nothing_more() -> None:
    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    platform = _evictable_platform("batch")
    [notify] = platform.decide(manager, _pressure(4, within_s=60), NOW)
    [evict] = platform.decide(manager, _ack(notify), NOW + timedelta(seconds=5))
    assert evict.action == "evict" and manager.evicting == {}
    again = _ack(notify).model_copy(update={"verdict_id": "judged-again", "response_id": "again"})
    assert platform.decide(manager, again, NOW + timedelta(seconds=6)) == []


def test_notices_are_kept_only_while_their_instances_run_and_a_restart_keeps_no_more() -> None:
    rounds = 30
    workloads = [f"w{n}" for n in range(2 * rounds)]
    platform = _evictable_platform(*workloads)
    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    decided: list[Decision] = []
    lapsing: list[str] = []
    """Each round's notice left unanswered: its instance goes at its deadline, 60 s on, or before."""
    for n in range(rounds):  # a round every 45 s: the round before's unanswered notice is still pending
        now = NOW + timedelta(seconds=45 * n)
        [acked] = platform.decide(manager, _pressure(4, within_s=60), now)
        [unanswered] = platform.decide(manager, _pressure(4, within_s=60), now)
        decided += [acked, unanswered, *platform.decide(manager, _ack(acked), now)]
        lapsing.append(unanswered.detail["instance"])
        if n % 3 == 0:  # this one's deployment ends before its deadline
            tenant, workload, instance = lapsing[-1].split("/")
            ended = InstanceReleased(tenant=tenant, workload=workload, instance=instance, at=now, why="ended")
            platform.inventory.apply([ended])
        still_running = {lapsing[-2]} if n and (n - 1) % 3 else set()  # unless its deployment ended
        assert set(manager.evicting.values()) == {lapsing[-1], *still_running}

    notified = [d.detail["instance"] for d in decided if d.action == "notify"]
    assert sorted(notified) == sorted(f"acme/{w}/d-0" for w in workloads), "each evicted once, none missed"
    assert len([d for d in decided if d.action == "evict"]) == rounds
    platform.inventory.advance(NOW + timedelta(seconds=45 * rounds + 60))
    assert len(platform.inventory) == 0 and not platform.inventory.leaving
    restarted = SpotHarvestManager(ServiceContext(load_fleet()))
    restarted.restore(decided)
    assert restarted.evicting == manager.evicting


def _harvest_placement(workload: str, server: str) -> InstancePlaced:
    return InstancePlaced(
        tenant="acme",
        workload=workload,
        deployment="d",
        instance="d-0",
        server=server,
        cluster="c1",
        pool=Pool.HARVEST,
        cores=4,
        memory_gb=8.0,
    )


def test_harvest_cores_are_kept_only_for_vms_that_run_and_a_restart_keeps_no_more(database_url: str) -> None:
    rounds = 12
    steady = WorkloadHints(evictable=True, min_notice_s=600, min_cores=2, max_cores=16)
    hints = {f"w{n}": WorkloadHints(min_cores=4, max_cores=16) for n in range(rounds)}
    platform = Platform({**hints, "steady": steady})
    platform.inventory.apply([_harvest_placement("steady", "h2")])
    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    decided: list[Decision] = []
    for n in range(rounds):  # a round every 45 s: the steady VM's shrink is pending throughout
        now = NOW + timedelta(seconds=45 * n)
        if n:  # the VM before ends its deployment
            ended = InstanceReleased(tenant="acme", workload=f"w{n - 1}", instance="d-0", at=now, why="ended")
            platform.inventory.apply([ended])
        platform.inventory.apply([_harvest_placement(f"w{n}", "h1")])
        decided += platform.decide(
            manager, SpareCapacity(server="h1", spare_cores=16, spare_memory_gb=64), now
        )
        decided += platform.decide(
            manager, SpareCapacity(server="h2", spare_cores=3, spare_memory_gb=64), now
        )
        assert manager.harvest_cores == {f"acme/w{n}/d-0": 16, "acme/steady/d-0": 3}

    resized = [(d.detail["instance"], d.detail["cores"]) for d in decided]
    assert resized == [
        ("acme/w0/d-0", 16),
        ("acme/steady/d-0", 3),
        *((f"acme/w{n}/d-0", 16) for n in range(1, rounds)),
    ]
    restarted = SpotHarvestManager(ServiceContext(load_fleet()))
    restarted.restore(through_the_log(decided, database_url))
    assert restarted.harvest_cores == manager.harvest_cores
