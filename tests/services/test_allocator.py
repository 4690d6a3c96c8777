"""The allocator's policy on constructed fleets: pure, no bus, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wi_services.allocator import Goal, Usage, place
from wi_services.fleet import Fleet, load_fleet

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


def _hints(*hints: HintBase) -> dict[str, HintBase]:
    return {h.kind: h for h in hints}


def test_high_priority_with_strict_availability_goes_regular_across_enough_fault_domains() -> None:
    hints = _hints(Priority(**WHO, level="high"), Availability(**WHO, target=0.9999))
    placed = place(_fleet(), Usage(), _request(instances=3), hints, NOW)
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
    placed = place(one_domain, Usage(), _request(instances=2), _hints(Availability(**WHO, target=0.999)), NOW)
    assert placed.notice.outcome == "rejected"
    assert any("only 1 fault domains for 2 needed" in line for line in placed.log)


def test_evictable_work_goes_to_spot_and_the_log_says_which_filter_removed_what() -> None:
    placed = place(_fleet(), Usage(), _request(), _hints(Evictability(**WHO, evictable=True)), NOW)
    assert placed.notice.pool == "spot"
    assert placed.log[0] == "pools: evictable: spot"
    assert any(
        line.startswith("pool filter removed 6 host(s): pool oversubscribed not in spot, regular")
        for line in placed.log
    )


def test_low_priority_tolerant_work_goes_to_oversubscribed_capacity() -> None:
    hints = _hints(Priority(**WHO, level="low"), LatencyTolerance(**WHO, latency_class="tolerant"))
    assert place(_fleet(), Usage(), _request(), hints, NOW).notice.pool == "oversubscribed"


def test_region_free_work_goes_cheapest_or_greenest_by_policy() -> None:
    assert place(_fleet(), Usage(), _request(), {}, NOW, Goal.CHEAPEST).notice.region == "cheap"
    assert place(_fleet(), Usage(), _request(), {}, NOW, Goal.GREENEST).notice.region == "green"


def test_allowed_regions_and_data_residency_bind() -> None:
    hints = _hints(Region(**WHO, allowed="any", data_residency="europe"))
    placed = place(_fleet(), Usage(), _request(), hints, NOW)
    assert placed.notice.region == "green"
    assert any("region cheap is outside europe" in line for line in placed.log)


def test_delay_tolerant_work_is_deferred_with_a_start_time_when_capacity_is_tight() -> None:
    usage = Usage()
    fleet = _fleet()
    for server in fleet.servers:
        usage.cores[server.id] = 14  # 2 cores free on each host
    hints = _hints(DelayTolerance(**WHO, start_within_s=1800))
    placed = place(fleet, usage, _request(instances=4, cores=2), hints, NOW)
    assert placed.notice.outcome == "deferred"
    assert placed.notice.start_at == NOW + timedelta(seconds=1800)
    assert usage.cores == {s.id: 14 for s in fleet.servers}, "a deferral books nothing"


def test_without_delay_tolerance_a_full_fleet_rejects() -> None:
    usage = Usage(cores={s.id: 16 for s in _fleet().servers})
    assert place(_fleet(), usage, _request(), {}, NOW).notice.outcome == "rejected"


def test_placement_books_capacity() -> None:
    usage = Usage()
    placed = place(_fleet(), usage, _request(instances=2, cores=4), {}, NOW)
    assert sum(usage.cores.values()) == 8 and set(usage.cores) == set(placed.servers)


def test_the_sample_fleet_loads_with_its_references_resolved() -> None:
    fleet = load_fleet()
    assert {s.pool for s in fleet.servers} == {"regular", "spot", "harvest", "oversubscribed"}
    assert len(fleet.llm_endpoints) == 2


def test_decide_changes_nothing_until_the_runner_applies_the_recorded_decision() -> None:
    from wi_services import ServiceContext
    from wi_services.allocator import VmAllocator
    from wi_services.plugin import View

    allocator = VmAllocator(ServiceContext(_fleet()))
    request = _request(instances=2, cores=8)
    first = allocator.decide(request, View({}), NOW)
    again = allocator.decide(request, View({}), NOW)
    assert first == again and allocator.usage.cores == {}
    allocator.apply(first)
    assert sum(allocator.usage.cores.values()) == 16
    allocator.restore(first)
    assert sum(allocator.usage.cores.values()) == 16, "restore starts from nothing"
