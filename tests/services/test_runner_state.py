"""The decision log: turns give gapless sequence numbers, catching up sees each decision once, and an
input decided before is known; a service reads the hints of the workloads an input touches only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from wi_services.spot_harvest import SpotHarvestManager

from tests.services.views import view
from wi.contract import CapacityPressure, Pool, SpareCapacity
from wi.database import create_db_engine, migrate
from wi.engine import Decision, DecisionLog, Instance, ServiceContext, load_fleet

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _log(database_url: str) -> DecisionLog:
    engine = create_db_engine(database_url)
    migrate(engine)
    return DecisionLog(engine)


def _decision(service: str, input_id: str) -> Decision:
    return Decision(service=service, input_id=input_id, index=0, action="x", summary="s")


def test_catching_up_hands_out_each_decision_once_whatever_the_clocks(database_url: str) -> None:
    log = _log(database_url)
    with log.turn("svc", 0) as turn:
        assert turn.unseen() == []
        mine = turn.record([_decision("svc", "a"), _decision("svc", "b")], NOW)
    assert [d.seq for d in mine] == [1, 2]
    with log.turn("svc", 0) as turn:  # another process, a slower clock
        turn.record([_decision("svc", "late"), _decision("other", "not mine")], NOW - timedelta(hours=1))
    with log.turn("svc", 2) as turn:
        assert [d.input_id for d in turn.unseen()] == ["late"], "by sequence, not by time; others' not"
        seen = turn.head
    with log.turn("svc", seen) as turn:
        assert turn.unseen() == []
    log.engine.dispose()


def test_an_input_decided_before_is_known_to_every_process(database_url: str) -> None:
    log = _log(database_url)
    with log.turn("svc", 0) as turn:
        turn.record([_decision("svc", "e1")], NOW)
    with log.turn("svc", 0) as turn:
        before = turn.decided(["e1", "e2"])
    assert list(before) == ["e1"] and [d.key for d in before["e1"]] == ["svc:e1:0000"]
    log.engine.dispose()


def test_turns_taken_at_once_get_gapless_unique_sequence_numbers(database_url: str) -> None:
    log = _log(database_url)
    with log.turn("svc", 0):
        pass  # the head row exists before the race (its creation is not what this tests)

    def take_turns(who: str) -> None:
        for n in range(25):
            with log.turn(who, 0) as turn:
                turn.record([_decision(who, f"{who}-{n}")], NOW)

    threads = [threading.Thread(target=take_turns, args=(who,)) for who in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = sorted(d.seq or 0 for who in ("a", "b", "c") for d in log.all_for(who))
    assert seqs == list(range(1, 76)) and log.head() == 75
    log.engine.dispose()


def _instance(workload: str, cluster: str, pool: Pool, server: str) -> Instance:
    return Instance("acme", workload, "d", f"{workload}-0", server, cluster, pool, 4, 8.0)


def test_the_manager_reads_the_hints_of_the_workloads_an_event_touches_only() -> None:
    manager = SpotHarvestManager(ServiceContext(load_fleet()))
    inventory = view(
        instances=[
            _instance("here", "c1", Pool.SPOT, "s1"),
            _instance("other-pool", "c1", Pool.REGULAR, "s2"),
            _instance("elsewhere", "c2", Pool.SPOT, "s3"),
        ]
    ).inventory
    pressure = CapacityPressure(cluster="c1", pool="spot", cores_needed=4, needed_within_s=60)
    assert manager.concerns(pressure, inventory) == {("acme", "here")}
    spare = SpareCapacity(server="s3", spare_cores=4, spare_memory_gb=8)
    assert manager.concerns(spare, inventory) == {("acme", "elsewhere")}
