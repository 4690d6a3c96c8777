"""One valid instance of every v1 message type, shared by the contract, bus and registry tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wi.contract import (
    Accept,
    Ack,
    Availability,
    CapacityPressure,
    ClearHint,
    Cost,
    CostOffer,
    Decline,
    Defer,
    DelayTolerance,
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    EndpointConfig,
    EndpointLoad,
    Evictability,
    Eviction,
    InstancePlacement,
    LatencyTolerance,
    Maintenance,
    MaintenancePlanned,
    Message,
    Migration,
    Placement,
    PowerCap,
    PowerEvent,
    PriceUpdate,
    Priority,
    Reconfiguration,
    Region,
    Resize,
    Scaling,
    SpareCapacity,
    ThermalEmergency,
    Verdict,
)

T, W = "acme", "trainer"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


def samples() -> list[Message]:
    """A valid message of every type in the catalog."""
    who = {"tenant": T, "workload": W, "issued_at": NOW}
    config = EndpointConfig(replicas=2, tensor_parallel=8, gpu_frequency_mhz=1980)
    return [
        Priority(**who, level="high"),
        Evictability(**who, evictable=True, min_notice_s=120, checkpoint_s=30),
        LatencyTolerance(
            **who, latency_class="strict", p99_ms=150, ttft_ms=500, tbt_ms=50, max_slowdown_pct=5
        ),
        DelayTolerance(**who, start_within_s=3600, complete_by=LATER),
        Availability(**who, target=0.999),
        Region(**who, allowed=["europewest", "useast"], data_residency="europe"),
        Scaling(**who, stateless=True, min_instances=2, max_instances=8, min_cores=2, max_cores=16),
        Migration(**who, live_migratable=True, restartable=False),
        Cost(**who, accepts_offers=True, max_price_per_hour=1.5),
        ClearHint(**who, hint_kind="priority"),
        Eviction(**who, instance="vm-1", not_before=LATER, reason="spot capacity reclaimed"),
        Maintenance(
            **who,
            instance="vm-1",
            type="reboot",
            not_before=LATER,
            expected_duration_s=300,
            deferrable_until=LATER + timedelta(hours=2),
            responses=["ack", "defer"],
        ),
        PowerEvent(
            **who,
            power_domain="row-7",
            type="power_cap",
            gpu_frequency_mhz=1400,
            starts_at=LATER,
            expected_duration_s=900,
            expected_slowdown_pct=8,
        ),
        Resize(**who, instance="vm-1", cores=12, memory_gb=48, effective_at=LATER),
        CostOffer(
            **who,
            offer_id="offer-1",
            commit=[Evictability(tenant=T, workload=W, evictable=True)],
            discount_pct=40,
            expires_at=LATER,
        ),
        Reconfiguration(
            **who,
            endpoint="chat",
            before=config,
            after=config.model_copy(update={"replicas": 3}),
            reason="load rose",
            expected_ttft_ms=300,
            expected_tbt_ms=40,
            effective_at=LATER,
        ),
        Placement(
            **who,
            deployment="web",
            outcome="placed",
            region="useast",
            pool="spot",
            instances=[InstancePlacement(region="useast", pool="spot")],
            price_per_hour=0.2,
            reason="evictable: spot is cheapest",
        ),
        Ack(**who, notice_id="n-1"),
        Accept(**who, notice_id="n-1"),
        Decline(**who, notice_id="n-1", reason="we need the capacity"),
        Defer(**who, notice_id="n-1", until=LATER),
        DeploymentRequest(**who, deployment="web", instances=3, cores=4, memory_gb=16, regions=["useast"]),
        DeploymentScale(**who, deployment="web", instances=5),
        DeploymentEnd(**who, deployment="web"),
        CapacityPressure(issued_at=NOW, cluster="c1", pool="spot", cores_needed=64, needed_within_s=60),
        PowerCap(issued_at=NOW, power_domain="row-7", cap_watts=40_000, draw_watts=45_000),
        ThermalEmergency(issued_at=NOW, power_domain="row-7", severity="critical"),
        SpareCapacity(issued_at=NOW, server="s-12", spare_cores=20, spare_memory_gb=80),
        MaintenancePlanned(
            issued_at=NOW, server="s-12", type="live_migration", not_before=LATER, expected_duration_s=5
        ),
        PriceUpdate(issued_at=NOW, region="useast", pool="spot", price_per_core_hour=0.01),
        EndpointLoad(
            issued_at=NOW,
            endpoint="chat",
            requests_per_s=42.5,
            mean_prompt_tokens=1200,
            mean_output_tokens=200,
        ),
        Verdict(
            **who,
            verdict_id="n-1:r-1",
            notice_id="n-1",
            notice_kind="eviction",
            state="acked",
            response_id="r-1",
            response="ack",
            cursor=7,
        ),
    ]
