"""How a runner keeps its state current: the decisions it follows, and the hints it reads for an input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wi_services import ServiceContext, load_fleet
from wi_services.inventory import Instance
from wi_services.plugin import DecisionTail
from wi_services.spot_harvest import SpotHarvestManager

from wi.audit import AuditStore, Decision
from wi.contract import CapacityPressure, Pool, SpareCapacity
from wi.database import create_db_engine, migrate

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _record(audit: AuditStore, input_id: str, at: datetime) -> None:
    decision = Decision(service="svc", input_id=input_id, index=0, action="x", summary="s")
    audit.decide_exclusively("svc", input_id, at, (), lambda unseen, before: [decision], at)


def test_a_tail_hands_out_each_decision_once_even_one_recorded_late(database_url: str) -> None:
    engine = create_db_engine(database_url)
    migrate(engine)
    audit = AuditStore(engine)
    tail = DecisionTail("svc")
    _record(audit, "a", NOW)
    _record(audit, "b", NOW + timedelta(seconds=1))
    assert [d.input_id for d in tail.new(audit)] == ["a", "b"]
    assert tail.new(audit) == []
    _record(audit, "late", NOW - timedelta(seconds=30))  # another process, a slower clock
    _record(audit, "c", NOW + timedelta(seconds=2))
    assert sorted(d.input_id for d in tail.new(audit)) == ["c", "late"]
    engine.dispose()


def test_an_input_decided_by_another_process_is_not_decided_again(database_url: str) -> None:
    engine = create_db_engine(database_url)
    migrate(engine)
    audit = AuditStore(engine)
    _record(audit, "e1", NOW)
    calls: list[tuple[list[str], bool]] = []

    def decide(unseen: list[Decision], before: bool) -> list[Decision]:
        calls.append(([d.input_id for d in unseen], before))
        return [] if before else [Decision(service="svc", input_id="e1", index=5, action="x", summary="s")]

    fresh, before = audit.decide_exclusively("svc", "e1", NOW - timedelta(hours=1), (), decide, NOW)
    assert calls == [(["e1"], True)], "it still catches up, but decides nothing"
    assert fresh == [] and [d.key for d in before] == ["svc:e1:0000"]
    engine.dispose()


def _instance(workload: str, cluster: str, pool: Pool, server: str) -> Instance:
    return Instance("acme", workload, "d", f"{workload}-0", server, cluster, pool, 4, 8.0)


def test_the_manager_reads_the_hints_of_the_workloads_an_event_touches_only() -> None:
    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    instances = [
        _instance("here", "c1", Pool.SPOT, "s1"),
        _instance("other-pool", "c1", Pool.REGULAR, "s2"),
        _instance("elsewhere", "c2", Pool.SPOT, "s3"),
    ]
    pressure = CapacityPressure(cluster="c1", pool="spot", cores_needed=4, needed_within_s=60)
    assert manager.concerns(pressure, instances) == {("acme", "here")}
    spare = SpareCapacity(server="s3", spare_cores=4, spare_memory_gb=8)
    assert manager.concerns(spare, instances) == {("acme", "elsewhere")}
