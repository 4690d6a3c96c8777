"""The typed view of a workload's hints: what each kind sets, the defaults, and instance scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wi.contract import (
    Availability,
    Cost,
    DelayTolerance,
    Evictability,
    HintBase,
    LatencyTolerance,
    Migration,
    Priority,
    Region,
    Scaling,
)
from wi.engine import DEFAULT_MIN_NOTICE_S, NO_HINTS, WorkloadHints
from wi.registry import effective_hints

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WHO = {"tenant": "acme", "workload": "web", "issued_at": NOW}


def _view(*hints: HintBase) -> WorkloadHints:
    return WorkloadHints.from_hints({h.kind: h for h in hints})


def test_an_unhinted_workload_gets_every_default() -> None:
    assert (NO_HINTS.priority, NO_HINTS.latency_class, NO_HINTS.availability_target) == (
        "normal",
        "moderate",
        0.99,
    )
    assert not (NO_HINTS.evictable or NO_HINTS.stateless or NO_HINTS.restartable or NO_HINTS.accepts_offers)
    assert (NO_HINTS.start_within_s, NO_HINTS.delay_tolerant) == (0, False)
    assert (NO_HINTS.allowed_regions, NO_HINTS.data_residency) == (None, None)
    assert (NO_HINTS.min_instances, NO_HINTS.max_instances, NO_HINTS.min_cores) == (1, 1, None)
    assert (NO_HINTS.ttft_ms, NO_HINTS.tbt_ms) == (None, None)
    assert NO_HINTS.disruption_cost == (2, 1)
    assert NO_HINTS.core_range(8) == (8, 8)


def test_silence_promises_the_notice_an_evictability_hint_without_min_notice_s_does() -> None:
    said = Evictability(**WHO, evictable=True)
    assert DEFAULT_MIN_NOTICE_S == said.min_notice_s == NO_HINTS.min_notice_s == 30


def test_every_kind_sets_its_attributes() -> None:
    view = _view(
        Priority(**WHO, level="low"),
        Evictability(**WHO, evictable=True, min_notice_s=90, checkpoint_s=20),
        LatencyTolerance(
            **WHO, latency_class="tolerant", p99_ms=300, ttft_ms=400, tbt_ms=60, max_slowdown_pct=5
        ),
        DelayTolerance(**WHO, start_within_s=3600),
        Availability(**WHO, target=0.999),
        Region(**WHO, allowed=["useast", "uswest2"], data_residency="us"),
        Scaling(**WHO, stateless=True, min_instances=2, max_instances=6, min_cores=4, max_cores=16),
        Migration(**WHO, live_migratable=True, restartable=True),
        Cost(**WHO, accepts_offers=True, max_price_per_hour=2.5),
    )
    assert (view.priority, view.evictable, view.min_notice_s, view.checkpoint_s) == ("low", True, 90, 20)
    assert (view.latency_class, view.p99_ms, view.ttft_ms, view.tbt_ms, view.max_slowdown_pct) == (
        "tolerant",
        300,
        400,
        60,
        5,
    )
    assert (view.start_within_s, view.delay_tolerant, view.availability_target) == (3600, True, 0.999)
    assert (view.allowed_regions, view.data_residency) == (frozenset({"useast", "uswest2"}), "us")
    assert (view.stateless, view.min_instances, view.max_instances, view.core_range(8)) == (
        True,
        2,
        6,
        (4, 16),
    )
    assert (view.live_migratable, view.restartable, view.accepts_offers, view.max_price_per_hour) == (
        True,
        True,
        True,
        2.5,
    )
    assert view.disruption_cost == (1, 0)


def test_an_instance_hint_overrides_its_kind_only_and_an_expired_one_falls_back() -> None:
    workload = [Priority(**WHO, level="high"), Evictability(**WHO, evictable=True, min_notice_s=60)]
    canary = Evictability(**WHO, instance="web-1", evictable=False, ttl_s=60)
    effective = effective_hints("acme", "web", [*workload, canary], NOW)
    view = WorkloadHints.of(effective)
    assert (view.evictable, view.for_instance("web-0").evictable) == (True, True)
    own = view.for_instance("web-1")
    assert (own.evictable, own.priority, own.min_notice_s) == (False, "high", 30)
    assert view.for_instance("web-0") is view, (
        "an instance without hints of its own reads the workload's view"
    )
    later = WorkloadHints.of(effective_hints("acme", "web", [*workload, canary], NOW + timedelta(seconds=60)))
    assert later.for_instance("web-1") == later


def test_the_lowest_priority_and_most_tolerant_are_disrupted_first() -> None:
    costs = [
        _view(Priority(**WHO, level=level), LatencyTolerance(**WHO, latency_class=latency)).disruption_cost
        for level, latency in [("critical", "strict"), ("normal", "tolerant"), ("best_effort", "strict")]
    ]
    assert sorted(costs) == [(0, 2), (2, 0), (4, 2)]
