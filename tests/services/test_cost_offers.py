"""Cost offers: who gets one, what accepting commits, and that a decline is remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wi_sdk import Received, WorkloadClient
from wi_services.spot_harvest import SpotHarvestManager
from wi_services.spot_harvest.offers import ANSWER_GRACE_S, DECLINE_MEMORY_S, OFFER_TTL_S

from tests.platform import Running, eventually
from tests.services.replay import through_the_log
from tests.services.views import effective, view
from wi.bus.subjects import STREAMS
from wi.contract import (
    Cost,
    CostOffer,
    DelayTolerance,
    Evictability,
    Family,
    HintBase,
    Migration,
    NoticeState,
    Pool,
    Priority,
    Scaling,
    Verdict,
    utc_now,
)
from wi.engine import (
    Decision,
    DecisionLog,
    Instance,
    InstancePlaced,
    ServiceContext,
    View,
    WorkloadHints,
    load_fleet,
)
from wi.registry import EffectiveHints
from wi.simulate.platform import Platform

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
FLEET = load_fleet()
REGULAR = next(s for s in FLEET.servers if s.pool == "regular")


def _web(pool: Pool = Pool.REGULAR) -> Instance:
    return Instance("acme", "web", "site", "site-0", REGULAR.id, REGULAR.cluster, pool, 8, 32.0)


def _hints(*hints: HintBase) -> dict[tuple[str, str], EffectiveHints]:
    return effective(*hints)


FLEXIBLE = (
    Cost(tenant="acme", workload="web", accepts_offers=True),
    Scaling(tenant="acme", workload="web", stateless=True),
    Migration(tenant="acme", workload="web", live_migratable=False, restartable=True),
)


def _offer(manager: SpotHarvestManager, view: View, at: datetime = NOW) -> list[Decision]:
    hint = next(iter(view.hints[("acme", "web")].workload_hints.values()))
    return manager.decide(hint, view, at)


def _manager() -> SpotHarvestManager:
    return SpotHarvestManager(ServiceContext(FLEET))


def _verdict(offer: CostOffer, state: NoticeState, response_id: str = "r-1") -> Verdict:
    """The registry's verdict on the workload's answer to an offer."""
    return Verdict(
        tenant=offer.tenant,
        workload=offer.workload,
        verdict_id=f"judged-{response_id}",
        notice_id=offer.notice_id,
        notice_kind="cost_offer",
        state=state,
        response_id=response_id,
        response="accept" if state is NoticeState.ACCEPTED else "decline",
    )


def test_a_stateless_restartable_workload_on_regular_capacity_is_offered_spot_terms() -> None:
    [decision] = _offer(_manager(), view(_hints(*FLEXIBLE), (_web(),)))
    [offer] = decision.notices
    assert isinstance(offer, CostOffer)
    assert offer.discount_pct == 35.0  # half of regular 1.0 -> spot 0.3
    [commit] = offer.commit
    assert isinstance(commit, Evictability) and commit.evictable and commit.min_notice_s == 30
    assert offer.expires_at == NOW + timedelta(seconds=OFFER_TTL_S)
    assert (
        decision.action == "offer" and "stateless and restartable but not evictable" in decision.reasons[-1]
    )


def test_no_offer_without_consent_or_without_unpriced_flexibility() -> None:
    manager = _manager()
    no_consent = _hints(*FLEXIBLE[1:], Priority(tenant="acme", workload="web", level="normal"))
    assert _offer(manager, view(no_consent, (_web(),))) == []
    on_spot = view(_hints(*FLEXIBLE), (_web(Pool.SPOT),))
    assert _offer(manager, on_spot) == []
    evictable = _hints(*FLEXIBLE, Evictability(tenant="acme", workload="web", evictable=True))
    assert _offer(manager, view(evictable, (_web(),))) == []


def test_a_delay_tolerant_normal_priority_workload_is_offered_oversubscribed_terms() -> None:
    hints = _hints(FLEXIBLE[0], DelayTolerance(tenant="acme", workload="web", start_within_s=6 * 3600))
    [decision] = _offer(_manager(), view(hints, (_web(),)))
    [offer] = decision.notices
    assert isinstance(offer, CostOffer) and offer.discount_pct == 20.0  # half of 1.0 -> 0.6
    assert [
        (h.kind, getattr(h, "level", None) or getattr(h, "latency_class", None)) for h in offer.commit
    ] == [
        ("priority", "low"),
        ("latency_tolerance", "tolerant"),
    ]


def test_a_declined_offer_is_not_repeated_until_the_memory_lapses() -> None:
    manager = _manager()
    seen = view(_hints(*FLEXIBLE), (_web(),))
    offered = _offer(manager, seen)
    manager.apply(offered)
    assert _offer(manager, seen) == [], "one open offer at a time"
    [offer] = offered[0].notices
    assert isinstance(offer, CostOffer)
    declined = manager.decide(_verdict(offer, NoticeState.DECLINED), seen, NOW)
    assert [d.action for d in declined] == ["decline"]
    manager.apply(declined)
    assert manager.decide(_verdict(offer, NoticeState.ACCEPTED, "r-2"), seen, NOW) == [], (
        "the offer is closed"
    )
    assert _offer(manager, seen, NOW + timedelta(days=6)) == []
    assert [d.action for d in _offer(manager, seen, NOW + timedelta(seconds=DECLINE_MEMORY_S))] == ["offer"]

    restarted = _manager()
    restarted.restore([*offered, *declined])
    assert _offer(restarted, seen, NOW + timedelta(days=1)) == [], "the decline survives a restart"


def test_accepting_commits_the_hints_now_and_lowers_the_price() -> None:
    manager = _manager()
    seen = view(_hints(*FLEXIBLE), (_web(),))
    offered = _offer(manager, seen)
    manager.apply(offered)
    [offer] = offered[0].notices
    assert isinstance(offer, CostOffer)
    later = NOW + timedelta(minutes=5)
    [accepted] = manager.decide(_verdict(offer, NoticeState.ACCEPTED), seen, later)
    assert accepted.action == "accept"
    [hint] = accepted.hints
    assert isinstance(hint, Evictability) and hint.evictable and hint.issued_at == later
    before, after = accepted.detail["price_per_hour"]
    assert after == round(before * 0.65, 6) and accepted.detail["discount_pct"] == 35.0
    manager.apply([accepted])
    assert _offer(manager, seen, later) == [], "accepted terms are not offered again"


def test_a_lapsed_offer_may_be_made_again() -> None:
    manager = _manager()
    seen = view(_hints(*FLEXIBLE), (_web(),))
    offered = _offer(manager, seen)
    manager.apply(offered)
    late = NOW + timedelta(seconds=OFFER_TTL_S + 1)
    assert [d.action for d in _offer(manager, seen, late)] == ["offer"]


def test_an_accept_the_registry_took_in_time_commits_even_when_the_service_gets_to_it_late() -> None:
    """The issue's case: accepted at 59 minutes, processed at 61. The registry alone judges, by when the
    accept arrived; the service acts on its verdict, whatever its own clock says."""
    manager = _manager()
    seen = view(_hints(*FLEXIBLE), (_web(),))
    offered = _offer(manager, seen)
    manager.apply(offered)
    [offer] = offered[0].notices
    assert isinstance(offer, CostOffer)
    processed = NOW + timedelta(seconds=OFFER_TTL_S + 60)
    [accepted] = manager.decide(_verdict(offer, NoticeState.ACCEPTED), seen, processed)
    assert accepted.action == "accept" and accepted.hints


async def test_an_offer_reaches_the_workload_and_its_accept_commits_the_hints(running: Running) -> None:
    offers: list[Received[CostOffer]] = []
    async with WorkloadClient(
        tenant="acme", workload="web", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(CostOffer)
        async def take(offer: Received[CostOffer]) -> None:
            offers.append(offer)
            await offer.accept(reason="cheaper is better")

        client.start()
        await client.hint(client.new(Cost, accepts_offers=True))
        await client.hint(client.new(Scaling, stateless=True))
        await client.hint(client.new(Migration, live_migratable=False, restartable=True))
        await client.deploy(deployment="site", instances=1, cores=4, memory_gb=16)
        await eventually(lambda: offers)
        assert running.platform.store is not None
        audit = DecisionLog(running.platform.store.engine)
        await eventually(lambda: any(d.action == "accept" for d in audit.recent("spot-harvest")))

        store = running.platform.store

        def committed() -> bool:
            evictability = store.effective("acme", "web", utc_now()).workload_hints.get("evictability")
            return isinstance(evictability, Evictability) and evictability.evictable

        await eventually(committed)
    assert offers[0].notice.discount_pct == 35.0


def _flexible_platform(workloads: list[str]) -> Platform:
    """Workloads each running one instance on regular capacity, their hints showing unpriced flexibility
    (stateless and restartable but not evictable), driven as the runner and the simulator drive a service."""
    flexible = WorkloadHints(accepts_offers=True, stateless=True, restartable=True)
    platform = Platform({workload: flexible for workload in workloads})
    platform.inventory.apply(
        InstancePlaced(
            tenant="acme",
            workload=workload,
            deployment="site",
            instance="site-0",
            server=REGULAR.id,
            cluster=REGULAR.cluster,
            pool=Pool.REGULAR,
            cores=8,
            memory_gb=32.0,
        )
        for workload in workloads
    )
    return platform


def _cost_hint(workload: str, n: int = 0) -> Cost:
    return Cost(tenant="acme", workload=workload, accepts_offers=True, hint_id=f"cost-{workload}-{n}")


def _offered(decision: Decision) -> CostOffer:
    [offer] = decision.notices
    assert isinstance(offer, CostOffer)
    return offer


def test_an_unanswered_offer_is_kept_while_a_late_verdict_on_it_counts_and_a_restart_keeps_no_more(
    database_url: str,
) -> None:
    days = 20
    workloads = [f"w{n}" for n in range(days)]
    platform = _flexible_platform(workloads)
    manager = _manager()
    decided: list[Decision] = []
    for n, workload in enumerate(workloads):  # an offer a day to another workload, none answered
        decided += platform.decide(manager, _cost_hint(workload), NOW + timedelta(days=n))
        # answerable for a week after it lapses, an hour after it was made: that day's and the 7 before
        assert sorted(o.workload for _, o in manager.offers.values()) == sorted(
            workloads[max(0, n - 7) : n + 1]
        )

    offers = {o.workload: o for o in map(_offered, decided)}
    assert len(offers) == days, "each workload offered once"
    later = NOW + timedelta(days=days - 1, hours=2)
    too_late = _verdict(offers[workloads[-8]], NoticeState.ACCEPTED, "r-too-late")
    assert later >= offers[workloads[-8]].expires_at + timedelta(seconds=ANSWER_GRACE_S)
    assert platform.decide(manager, too_late, later) == [], "a week past its lapse: not acted on"
    in_grace = _verdict(offers[workloads[-7]], NoticeState.ACCEPTED, "r-in-grace")
    decided += platform.decide(manager, in_grace, later)
    assert [d.action for d in decided[days:]] == ["accept"], "lapsed six days ago: still acted on"

    restarted = _manager()
    restarted.restore(through_the_log(decided, database_url))
    assert restarted.offers == manager.offers and len(manager.offers) == 7


def test_a_decline_is_kept_while_it_holds_the_offer_back_and_a_restart_keeps_no_more(
    database_url: str,
) -> None:
    days = 20
    workloads = [f"w{n}" for n in range(days)]
    platform = _flexible_platform(workloads)
    manager = _manager()
    decided: list[Decision] = []
    for n, workload in enumerate(workloads):  # a day: another workload offered terms, and declining them
        now = NOW + timedelta(days=n)
        [offered] = platform.decide(manager, _cost_hint(workload), now)
        declined = _verdict(_offered(offered), NoticeState.DECLINED, f"r-{workload}")
        decided += [offered, *platform.decide(manager, declined, now + timedelta(minutes=1))]
        # a decline holds the offer back for a week: that day's and the 6 before
        assert sorted(w for _, w, _ in manager.declined) == sorted(workloads[max(0, n - 6) : n + 1])

    assert [d.action for d in decided] == ["offer", "decline"] * days
    last = NOW + timedelta(days=days - 1, hours=1)
    assert platform.decide(manager, _cost_hint(workloads[-7], 1), last) == [], "declined six days ago"
    again = platform.decide(manager, _cost_hint(workloads[-8], 1), last)
    assert [d.action for d in again] == ["offer"], "declined a week ago: its memory has lapsed"

    restarted = _manager()
    restarted.restore(through_the_log(decided, database_url))
    assert restarted.declined == manager.declined and len(restarted.declined) == 7


def test_an_offer_is_remembered_after_it_lapses_as_long_as_the_bus_keeps_a_verdict() -> None:
    assert STREAMS[Family.VERDICT].max_age_s == ANSWER_GRACE_S
