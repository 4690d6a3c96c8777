"""The registry store on SQLite and the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from tests.samples import LATER, NOW
from wi.contract import Ack, ClearHint, Decline, Eviction, Family, LatencyTolerance, Priority
from wi.registry import NoticeState, NoticeStatus, RegistryStore, ResponseRefused

WHO = {"tenant": "acme", "workload": "web"}


def test_the_migrations_build_exactly_the_tables_the_code_declares(store: RegistryStore) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    RegistryStore.open(database_url).close()
    reopened = RegistryStore.open(database_url)
    reopened.ping()
    reopened.close()


def test_latest_wins_whatever_the_order_of_application(store: RegistryStore) -> None:
    old = Priority(**WHO, level="low", issued_at=NOW)
    new = Priority(**WHO, level="high", issued_at=NOW + timedelta(seconds=1))
    store.apply_hints([(new, 2)])
    store.apply_hints([(old, 1)])
    assert store.effective("acme", "web", NOW).workload_hints == {"priority": new}
    assert [h.hint_id for h in store.history("acme", "web")] == [new.hint_id, old.hint_id]


def test_the_same_hint_id_is_one_row(store: RegistryStore) -> None:
    hint = Priority(**WHO, level="low", issued_at=NOW)
    assert store.apply_hints([(hint, 1)]) == [True]
    assert store.apply_hints([(hint, 7)]) == [False]
    assert len(store.history("acme", "web")) == 1


def test_the_same_hint_id_in_two_tenants_is_two_hints(store: RegistryStore) -> None:
    store.apply_hints([(Priority(tenant="acme", workload="web", level="low", hint_id="h1"), 1)])
    store.apply_hints([(Priority(tenant="other", workload="web", level="high", hint_id="h1"), 2)])
    assert store.effective("acme", "web", NOW).workload_hints["priority"].level == "low"  # type: ignore[attr-defined]


def test_ttl_expiry_clear_and_instance_scope(store: RegistryStore) -> None:
    store.apply_hints(
        [
            (Priority(**WHO, level="high", issued_at=NOW), 1),
            (Priority(**WHO, level="low", instance="canary", issued_at=NOW, ttl_s=60), 2),
            (LatencyTolerance(**WHO, latency_class="strict", issued_at=NOW), 3),
            (ClearHint(**WHO, hint_kind="latency_tolerance", issued_at=NOW + timedelta(seconds=1)), 4),
        ]
    )
    soon = store.effective("acme", "web", NOW + timedelta(seconds=30))
    assert soon.for_instance("canary")["priority"].level == "low"  # type: ignore[attr-defined]
    assert soon.for_instance("web-1")["priority"].level == "high"  # type: ignore[attr-defined]
    assert "latency_tolerance" not in soon.workload_hints
    later = store.effective("acme", "web", NOW + timedelta(seconds=61))
    assert later.for_instance("canary")["priority"].level == "high"  # type: ignore[attr-defined]


def test_a_clear_older_than_the_hint_does_not_remove_it(store: RegistryStore) -> None:
    store.apply_hints([(ClearHint(**WHO, hint_kind="priority", issued_at=NOW), 2)])
    store.apply_hints([(Priority(**WHO, level="high", issued_at=NOW + timedelta(seconds=1)), 1)])
    assert "priority" in store.effective("acme", "web", NOW + timedelta(seconds=2)).workload_hints


def test_within_one_batch_the_latest_wins_and_a_repeated_id_is_one_row(store: RegistryStore) -> None:
    low = Priority(**WHO, level="low", issued_at=NOW)
    high = Priority(**WHO, level="high", issued_at=NOW + timedelta(seconds=1))
    assert store.apply_hints([(high, 1), (low, 2), (low, 3)], through=3) == [True, True, False]
    assert store.effective("acme", "web", NOW).workload_hints == {"priority": high}
    assert len(store.history("acme", "web")) == 2
    assert store.watermark(Family.HINT) == 3


def test_a_watermark_only_moves_forward(store: RegistryStore) -> None:
    assert store.watermark(Family.HINT) == 0
    store.apply_hints([], through=7)
    store.apply_hints([], through=5)
    assert store.watermark(Family.HINT) == 7
    assert store.watermark(Family.NOTICE) == 0


def test_stored_times_come_back_in_utc(store: RegistryStore) -> None:
    store.apply_hints(
        [(Priority(**WHO, level="high", issued_at=datetime(2026, 1, 1, 12, tzinfo=UTC), ttl_s=60), 1)]
    )
    [hint] = store.current_hints("acme", "web")
    assert hint.issued_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


EVICTION = Eviction(**WHO, notice_id="n-1", instance="vm-1", not_before=LATER, reason="spot", issued_at=NOW)


def test_notices_keep_their_state(store: RegistryStore) -> None:
    assert store.apply_notices([(EVICTION, 1), (EVICTION, 1)], through=1, recorded_at=NOW) == [True, False]
    ack = Ack(**WHO, notice_id="n-1")
    [first, again] = store.apply_responses([(ack, 1, NOW), (ack, 1, NOW)])
    assert first == again and first.refused is None and first.status == NoticeStatus(NoticeState.ACKED)
    assert (first.notice_kind, first.cursor) == ("eviction", 1)
    notice, status = store.notice("n-1")  # type: ignore[misc]
    assert notice == EVICTION and status.state is NoticeState.ACKED
    assert [n.notice.notice_id for n in store.notices("acme", "web")] == ["n-1"]
    assert store.notices("acme", "web", open_only=True) == []
    assert store.notices("acme", "web", after=1) == []


def test_a_notice_trail_has_when_it_was_recorded_and_its_first_applied_response(store: RegistryStore) -> None:
    assert store.notice_trail("n-1") is None
    store.apply_notices([(EVICTION, 1)], recorded_at=NOW + timedelta(seconds=1))
    store.apply_notices([(EVICTION, 1)], recorded_at=LATER)  # recorded before: keeps its first time
    waiting = store.notice_trail("n-1")
    assert waiting is not None and waiting.notice == EVICTION and waiting.status.state is NoticeState.PENDING
    assert (waiting.recorded_at, waiting.answer, waiting.answered_at) == (
        NOW + timedelta(seconds=1),
        None,
        None,
    )
    store.apply_responses(
        [
            (Decline(**WHO, notice_id="n-1"), 1, NOW),  # refused: not an answer
            (Ack(**WHO, notice_id="n-1"), 2, NOW + timedelta(seconds=2)),
            (Ack(**WHO, notice_id="n-1"), 3, NOW + timedelta(seconds=3)),
        ]
    )
    answered = store.notice_trail("n-1")
    assert answered is not None and answered.status.state is NoticeState.ACKED
    assert (answered.answer, answered.answered_at) == ("ack", NOW + timedelta(seconds=2))
    assert answered.answered_at.tzinfo is not None


def test_refused_responses_leave_the_notice_as_it_was_and_the_rest_of_the_batch_applies(
    store: RegistryStore,
) -> None:
    store.apply_notices([(EVICTION, 1)], recorded_at=NOW)
    outcomes = store.apply_responses(
        [
            (Decline(**WHO, notice_id="n-1"), 1, NOW),
            (Ack(**WHO, notice_id="nope"), 2, NOW),
            (Ack(**WHO, notice_id="n-1"), 3, LATER),
            (Ack(**WHO, notice_id="n-1"), 4, NOW),
        ],
        through=4,
    )
    refusals = [o.refused.rule if isinstance(o.refused, ResponseRefused) else o.refused for o in outcomes]
    assert [type(r).__name__ if isinstance(r, Exception) else r for r in refusals] == [
        "not_allowed",
        "UnknownNotice",
        "late",
        None,
    ]
    assert "notice_id: no notice nope" in str(outcomes[1].refused)
    assert outcomes[1].status is None and outcomes[2].status == NoticeStatus(NoticeState.PENDING)
    _, status = store.notice("n-1")  # type: ignore[misc]
    assert status.state is NoticeState.ACKED
    assert store.watermark(Family.RESPONSE) == 4
