"""The allocator's policy on constructed fleets: pure, no bus, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wi_services.allocator import FleetColumns, Goal, Usage, place

from wi.contract import (
    Availability,
    DelayTolerance,
    DeploymentRequest,
    Evictability,
    HintBase,
    LatencyTolerance,
    Priority,
    Region,
)
from wi.engine import NO_HINTS, WorkloadHints
from wi.engine.fleet import Fleet, load_fleet

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WHO = {"tenant": "acme", "workload": "w"}


def _fleet(**changes: Any) -> Fleet:
    regions = [
        {"name": "cheap", "geography": "us", "price_per_core_hour": 0.04, "carbon_g_per_kwh": 500},
        {"name": "green", "geography": "europe", "price_per_core_hour": 0.06, "carbon_g_per_kwh": 20},
    ]
    servers = [
        {
            "id": f"{region}-{pool}-{i}",
            "cluster": region,
            "region": region,
            "pool": pool,
            "cores": 16,
            "memory_gb": 64,
            "fault_domain": f"{region}-fd{i}",
            "power_domain": "pd",
        }
        for region in ("cheap", "green")
        for pool in ("regular", "spot", "oversubscribed")
        for i in range(3)
    ]
    fleet = {
        "regions": regions,
        "servers": servers,
        "pool_price_factors": {"regular": 1.0, "spot": 0.3, "harvest": 0.5, "oversubscribed": 0.6},
    }
    return Fleet.model_validate({**fleet, **changes})


def _request(instances: int = 1, cores: int = 4, **extra: Any) -> DeploymentRequest:
    return DeploymentRequest(**WHO, deployment="d", instances=instances, cores=cores, memory_gb=8, **extra)


def _hints(*hints: HintBase) -> WorkloadHints:
    return WorkloadHints.from_hints({h.kind: h for h in hints})


def _empty(fleet: Fleet) -> tuple[FleetColumns, Usage]:
    columns = FleetColumns.of(fleet)
    return columns, Usage.empty(columns)


def test_high_priority_with_strict_availability_goes_regular_across_enough_fault_domains() -> None:
    hints = _hints(Priority(**WHO, level="high"), Availability(**WHO, target=0.9999))
    placed = place(*_empty(_fleet()), _request(instances=3), hints, NOW)
    assert placed.notice.outcome == "placed" and placed.notice.pool == "regular"
    fleet = _fleet()
    domains = {next(s for s in fleet.servers if s.id == sid).fault_domain for sid in placed.servers}
    assert len(domains) == 3


def test_three_nines_need_two_fault_domains_and_are_rejected_without_them() -> None:
    one_domain = _fleet(
        servers=[
            {
                "id": f"s{i}",
                "cluster": "c",
                "region": "cheap",
                "pool": "regular",
                "cores": 64,
                "memory_gb": 256,
                "fault_domain": "only",
                "power_domain": "pd",
            }
            for i in range(3)
        ]
    )
    placed = place(*_empty(one_domain), _request(instances=2), _hints(Availability(**WHO, target=0.999)), NOW)
    assert placed.notice.outcome == "rejected"
    assert any("only 1 fault domains for 2 needed" in line for line in placed.log)


def test_evictable_work_goes_to_spot_and_the_log_says_which_filter_removed_what() -> None:
    placed = place(*_empty(_fleet()), _request(), _hints(Evictability(**WHO, evictable=True)), NOW)
    assert placed.notice.pool == "spot"
    assert placed.log[0] == "pools: evictable: spot"
    assert any(
        line.startswith("pool filter removed 6 host(s): pool oversubscribed not in spot, regular")
        for line in placed.log
    )


def test_low_priority_tolerant_work_goes_to_oversubscribed_capacity() -> None:
    hints = _hints(Priority(**WHO, level="low"), LatencyTolerance(**WHO, latency_class="tolerant"))
    assert place(*_empty(_fleet()), _request(), hints, NOW).notice.pool == "oversubscribed"


def test_region_free_work_goes_cheapest_or_greenest_by_policy() -> None:
    assert place(*_empty(_fleet()), _request(), NO_HINTS, NOW, Goal.CHEAPEST).notice.region == "cheap"
    assert place(*_empty(_fleet()), _request(), NO_HINTS, NOW, Goal.GREENEST).notice.region == "green"


def test_allowed_regions_and_data_residency_bind() -> None:
    hints = _hints(Region(**WHO, allowed="any", data_residency="europe"))
    placed = place(*_empty(_fleet()), _request(), hints, NOW)
    assert placed.notice.region == "green"
    assert any("region cheap is outside europe" in line for line in placed.log)


def test_delay_tolerant_work_is_deferred_with_a_start_time_when_capacity_is_tight() -> None:
    columns, usage = _empty(_fleet())
    usage.book(range(len(columns)), _request(cores=14))  # 2 cores free on each host
    hints = _hints(DelayTolerance(**WHO, start_within_s=1800))
    placed = place(columns, usage, _request(instances=4, cores=2), hints, NOW)
    assert placed.notice.outcome == "deferred"
    assert placed.notice.start_at == NOW + timedelta(seconds=1800)
    assert (usage.cores == 14).all(), "a deferral books nothing"


def test_without_delay_tolerance_a_full_fleet_rejects() -> None:
    columns, usage = _empty(_fleet())
    usage.book(range(len(columns)), _request(cores=16))
    assert place(columns, usage, _request(), NO_HINTS, NOW).notice.outcome == "rejected"


def test_placement_books_nothing_and_booking_it_takes_its_capacity() -> None:
    columns, usage = _empty(_fleet())
    request = _request(instances=2, cores=4)
    placed = place(columns, usage, request, NO_HINTS, NOW)
    assert not usage.cores.any(), "place is pure"
    usage.book([columns.index[server] for server in placed.servers], request)
    assert usage.cores.sum() == 8
    assert {columns.ids[i] for i in usage.cores.nonzero()[0]} == set(placed.servers)


def test_the_sample_fleet_loads_with_its_references_resolved() -> None:
    fleet = load_fleet()
    assert {s.pool for s in fleet.servers} == {"regular", "spot", "harvest", "oversubscribed"}
    assert len(fleet.llm_endpoints) == 2


def test_decide_changes_nothing_and_its_placements_reach_the_inventory_as_changes() -> None:
    from wi_services.allocator import VmAllocator

    from tests.services.views import view
    from wi.engine import ServiceContext

    allocator = VmAllocator(ServiceContext(_fleet()))
    request = _request(instances=2, cores=8)
    seen = view({})
    first = allocator.decide(request, seen, NOW)
    again = allocator.decide(request, seen, NOW)
    assert first == again and len(seen.inventory) == 0
    [placed] = first
    seen.inventory.apply(placed.changes)
    assert [i.instance for i in seen.inventory] == ["d-0", "d-1"]
    assert sum(use.cores for use in seen.inventory.use.values()) == 16
    [more] = allocator.decide(request.model_copy(update={"request_id": "more"}), seen, NOW)
    assert [c.instance for c in more.changes] == ["d-2", "d-3"], "numbers go on, never reused"


def test_a_request_id_of_any_allowed_length_gets_a_valid_placement_notice() -> None:
    from wi_services.allocator import VmAllocator

    from tests.services.views import view
    from wi.engine import ServiceContext

    allocator = VmAllocator(ServiceContext(_fleet()))
    request = _request(request_id="r" * 128)
    [decision] = allocator.decide(request, view({}), NOW)
    [notice] = decision.notices
    assert type(notice).model_validate(notice.model_dump()) == notice, "its notice_id keeps the contract"


def test_an_instance_with_hints_of_its_own_runs_where_they_allow_and_the_notice_says_where_each_runs() -> (
    None
):
    from wi_services.allocator import VmAllocator

    from tests.services.views import effective, view
    from wi.engine import ServiceContext

    workload = Evictability(**WHO, evictable=True)
    steady = Evictability(**WHO, instance="d-1", evictable=False)
    hints = WorkloadHints.of(effective(workload, steady)[("acme", "w")])
    placed = place(*_empty(_fleet()), _request(instances=2), hints, NOW)
    assert [(i.region, i.pool) for i in placed.notice.instances] == [("cheap", "spot"), ("cheap", "regular")]
    assert (placed.notice.region, placed.notice.pool) == ("cheap", "spot"), "the first instance's"
    assert "the instances differ" in placed.notice.reason
    assert "instance d-1: pools: no flexibility hinted: regular capacity" in placed.log

    allocator = VmAllocator(ServiceContext(_fleet()))
    [decision] = allocator.decide(_request(instances=2), view(effective(workload, steady)), NOW)
    assert decision.summary == "d: placed on spot in cheap (1), regular in cheap (1)"


def test_instances_in_one_pool_and_region_make_a_plain_notice() -> None:
    placed = place(*_empty(_fleet()), _request(instances=3), NO_HINTS, NOW)
    assert {(i.region, i.pool) for i in placed.notice.instances} == {("cheap", "regular")}
    assert len(placed.notice.instances) == 3 and "differ" not in placed.notice.reason
