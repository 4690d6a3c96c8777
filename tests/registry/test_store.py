"""The registry store on SQLite and the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from tests.samples import LATER, NOW
from wi.contract import Ack, ClearHint, Decline, Eviction, LatencyTolerance, Priority
from wi.registry import NoticeState, RegistryStore, ResponseRefused, UnknownNotice

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
    store.apply_hint(new, stream_seq=2)
    store.apply_hint(old, stream_seq=1)
    assert store.effective("acme", "web", NOW).workload_hints == {"priority": new}
    assert [h.hint_id for h in store.history("acme", "web")] == [new.hint_id, old.hint_id]


def test_the_same_hint_id_is_one_row(store: RegistryStore) -> None:
    hint = Priority(**WHO, level="low", issued_at=NOW)
    assert store.apply_hint(hint, stream_seq=1) is True
    assert store.apply_hint(hint, stream_seq=7) is False
    assert len(store.history("acme", "web")) == 1


def test_the_same_hint_id_in_two_tenants_is_two_hints(store: RegistryStore) -> None:
    store.apply_hint(Priority(tenant="acme", workload="web", level="low", hint_id="h1"), stream_seq=1)
    store.apply_hint(Priority(tenant="other", workload="web", level="high", hint_id="h1"), stream_seq=2)
    assert store.effective("acme", "web", NOW).workload_hints["priority"].level == "low"  # type: ignore[attr-defined]


def test_ttl_expiry_clear_and_instance_scope(store: RegistryStore) -> None:
    store.apply_hint(Priority(**WHO, level="high", issued_at=NOW), 1)
    store.apply_hint(Priority(**WHO, level="low", instance="canary", issued_at=NOW, ttl_s=60), 2)
    store.apply_hint(LatencyTolerance(**WHO, latency_class="strict", issued_at=NOW), 3)
    store.apply_hint(ClearHint(**WHO, hint_kind="latency_tolerance", issued_at=NOW + timedelta(seconds=1)), 4)
    soon = store.effective("acme", "web", NOW + timedelta(seconds=30))
    assert soon.for_instance("canary")["priority"].level == "low"  # type: ignore[attr-defined]
    assert soon.for_instance("web-1")["priority"].level == "high"  # type: ignore[attr-defined]
    assert "latency_tolerance" not in soon.workload_hints
    later = store.effective("acme", "web", NOW + timedelta(seconds=61))
    assert later.for_instance("canary")["priority"].level == "high"  # type: ignore[attr-defined]


def test_a_clear_older_than_the_hint_does_not_remove_it(store: RegistryStore) -> None:
    store.apply_hint(ClearHint(**WHO, hint_kind="priority", issued_at=NOW), 2)
    store.apply_hint(Priority(**WHO, level="high", issued_at=NOW + timedelta(seconds=1)), 1)
    assert "priority" in store.effective("acme", "web", NOW + timedelta(seconds=2)).workload_hints


def test_stored_times_come_back_in_utc(store: RegistryStore) -> None:
    store.apply_hint(
        Priority(**WHO, level="high", issued_at=datetime(2026, 1, 1, 12, tzinfo=UTC), ttl_s=60), 1
    )
    [hint] = store.current_hints("acme", "web")
    assert hint.issued_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


EVICTION = Eviction(**WHO, notice_id="n-1", instance="vm-1", not_before=LATER, reason="spot", issued_at=NOW)


def test_notices_keep_their_state(store: RegistryStore) -> None:
    assert store.apply_notice(EVICTION, 1) is True
    assert store.apply_notice(EVICTION, 1) is False
    ack = Ack(**WHO, notice_id="n-1")
    assert store.apply_response(ack, 1, NOW).state is NoticeState.ACKED
    assert store.apply_response(ack, 1, NOW).state is NoticeState.ACKED
    notice, status = store.notice("n-1")  # type: ignore[misc]
    assert notice == EVICTION and status.state is NoticeState.ACKED
    assert [n.notice.notice_id for n in store.notices("acme", "web")] == ["n-1"]
    assert store.notices("acme", "web", open_only=True) == []
    assert store.notices("acme", "web", after=1) == []


def test_a_refused_response_leaves_the_notice_as_it_was(store: RegistryStore) -> None:
    store.apply_notice(EVICTION, 1)
    with pytest.raises(ResponseRefused, match="not_allowed"):
        store.apply_response(Decline(**WHO, notice_id="n-1"), 1, NOW)
    with pytest.raises(ResponseRefused, match="late"):
        store.apply_response(Ack(**WHO, notice_id="n-1"), 2, LATER)
    _, status = store.notice("n-1")  # type: ignore[misc]
    assert status.state is NoticeState.PENDING


def test_a_response_to_an_unknown_notice_is_reported(store: RegistryStore) -> None:
    with pytest.raises(UnknownNotice, match="notice_id: no notice nope"):
        store.apply_response(Ack(**WHO, notice_id="nope"), 1, NOW)
