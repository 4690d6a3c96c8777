"""The registry's rules as pure functions: no bus, no database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.samples import LATER, NOW
from wi.contract import Accept, Ack, ClearHint, CostOffer, Decline, Defer, Eviction, Maintenance, Priority
from wi.registry import NoticeState, NoticeStatus, ResponseRefused, effective_hints, respond, supersedes

WHO = {"tenant": "acme", "workload": "web"}


def test_the_later_issue_supersedes_and_the_stream_order_breaks_ties() -> None:
    assert supersedes((LATER, 1), (NOW, 9))
    assert not supersedes((NOW, 9), (LATER, 1))
    assert supersedes((NOW, 2), (NOW, 1))


def test_an_expired_hint_drops_out() -> None:
    hint = Priority(**WHO, level="low", issued_at=NOW, ttl_s=60)
    assert effective_hints("acme", "web", [hint], NOW + timedelta(seconds=59)).workload_hints == {
        "priority": hint
    }
    assert effective_hints("acme", "web", [hint], NOW + timedelta(seconds=60)).workload_hints == {}


def test_an_instance_hint_overrides_the_workload_hint_for_that_instance_only() -> None:
    wide = Priority(**WHO, level="high", issued_at=NOW)
    canary = Priority(**WHO, level="best_effort", instance="canary", issued_at=NOW)
    effective = effective_hints("acme", "web", [wide, canary], NOW)
    assert effective.for_instance("canary") == {"priority": canary}
    assert effective.for_instance("web-1") == {"priority": wide}


def test_an_expired_instance_hint_falls_back_to_the_workload_hint() -> None:
    wide = Priority(**WHO, level="high", issued_at=NOW)
    canary = Priority(**WHO, level="low", instance="canary", issued_at=NOW, ttl_s=10)
    effective = effective_hints("acme", "web", [wide, canary], NOW + timedelta(seconds=11))
    assert effective.for_instance("canary") == {"priority": wide}


def test_a_current_clear_leaves_nothing_in_effect() -> None:
    clear = ClearHint(**WHO, hint_kind="priority", issued_at=NOW)
    assert effective_hints("acme", "web", [clear], NOW).workload_hints == {}


EVICTION = Eviction(
    **WHO, notice_id="n-1", instance="vm-1", not_before=LATER, reason="spot reclaimed", issued_at=NOW
)
OFFER = CostOffer(
    **WHO,
    notice_id="n-2",
    offer_id="o-1",
    discount_pct=30,
    expires_at=LATER,
    issued_at=NOW,
    commit=[Priority(**WHO, level="low")],
)
MAINTENANCE = Maintenance(
    **WHO,
    notice_id="n-3",
    instance="vm-1",
    type="reboot",
    not_before=LATER,
    expected_duration_s=60,
    deferrable_until=LATER + timedelta(hours=1),
    responses=["ack", "defer"],
    issued_at=NOW,
)
PENDING = NoticeStatus()


def test_an_ack_before_the_deadline_settles_the_notice() -> None:
    assert respond(EVICTION, PENDING, Ack(**WHO, notice_id="n-1"), NOW).state is NoticeState.ACKED


def test_a_response_after_the_deadline_is_late() -> None:
    with pytest.raises(ResponseRefused, match="late"):
        respond(EVICTION, PENDING, Ack(**WHO, notice_id="n-1"), LATER)


def test_a_response_the_notice_does_not_allow_is_refused() -> None:
    with pytest.raises(ResponseRefused, match="not_allowed: a eviction notice takes ack, not decline"):
        respond(EVICTION, PENDING, Decline(**WHO, notice_id="n-1"), NOW)


def test_accept_after_decline_contradicts_but_a_repeat_is_harmless() -> None:
    declined = respond(OFFER, PENDING, Decline(**WHO, notice_id="n-2"), NOW)
    assert respond(OFFER, declined, Decline(**WHO, notice_id="n-2"), NOW) == declined
    with pytest.raises(ResponseRefused, match="conflict"):
        respond(OFFER, declined, Accept(**WHO, notice_id="n-2"), NOW)


def test_another_workload_cannot_answer() -> None:
    with pytest.raises(ResponseRefused, match="unknown_notice"):
        respond(EVICTION, PENDING, Ack(tenant="acme", workload="other", notice_id="n-1"), NOW)


def test_a_deferral_moves_the_deadline_within_its_limit() -> None:
    until = LATER + timedelta(minutes=30)
    deferred = respond(MAINTENANCE, PENDING, Defer(**WHO, notice_id="n-3", until=until), NOW)
    assert deferred == NoticeStatus(NoticeState.DEFERRED, until)
    assert deferred.observed(MAINTENANCE, LATER) is NoticeState.DEFERRED
    assert deferred.observed(MAINTENANCE, until) is NoticeState.EXPIRED
    assert respond(MAINTENANCE, deferred, Ack(**WHO, notice_id="n-3"), LATER).state is NoticeState.ACKED
    with pytest.raises(ResponseRefused, match="defer_too_long"):
        respond(MAINTENANCE, PENDING, Defer(**WHO, notice_id="n-3", until=LATER + timedelta(hours=2)), NOW)


def test_an_open_notice_past_its_deadline_is_expired() -> None:
    assert PENDING.observed(EVICTION, NOW) is NoticeState.PENDING
    assert PENDING.observed(EVICTION, LATER) is NoticeState.EXPIRED
