"""A service process killed with SIGKILL mid-stream and restarted repeats no action and loses none."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path

import nats.js.errors

from tests.platform import eventually, eventually_async
from tests.processes import start_wi_up
from tests.services.fleets import write_small_fleet
from wi.bus import Bus
from wi.contract import CapacityPressure, DeploymentRequest, Evictability
from wi.database import create_db_engine
from wi.engine import DecisionLog
from wi.server import EmbeddedNatsServer

WORKLOADS = 40


def _wi_up(
    nats_url: str,
    data_dir: Path,
    fleet: Path,
    env: dict[str, str] | None = None,
    output: list[str] | None = None,
) -> Awaitable[asyncio.subprocess.Process]:
    """``wi up`` running the allocator and the Spot/Harvest manager (or what ``env`` says) against an
    outside nats-server; what it prints goes to ``output``."""
    environment = {"WI_NATS_URL": nats_url, "WI_FLEET": str(fleet), "WI_SERVICES": "allocator,spot-harvest"}
    return start_wi_up(data_dir, {**environment, **(env or {})}, output)


async def _placed(bus: Bus, audit: DecisionLog) -> None:
    """WORKLOADS evictable workloads, one instance each, placed on spot."""
    for n in range(WORKLOADS):
        await bus.publish(Evictability(tenant="acme", workload=f"w{n}", evictable=True, min_notice_s=30))
        await bus.publish(
            DeploymentRequest(
                tenant="acme", workload=f"w{n}", deployment="d", instances=1, cores=4, memory_gb=8
            )
        )
    await eventually(lambda: len(audit.all_for("allocator")) == WORKLOADS, timeout_s=60)


def _evictions(audit: DecisionLog) -> list[str]:
    return [d.detail["instance"] for d in audit.all_for("spot-harvest") if d.action == "notify"]


def _pressure() -> CapacityPressure:
    return CapacityPressure(cluster="c1", pool="spot", cores_needed=4, needed_within_s=60)


async def test_sigkill_mid_stream_then_restart_repeats_no_eviction_and_loses_none(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    fleet = write_small_fleet(tmp_path / "fleet.json", "spot", servers=4, fault_domains=2)
    data_dir = tmp_path / "wi"
    audit = DecisionLog(create_db_engine(f"sqlite:///{data_dir / 'wi.db'}"))
    bus = await Bus.connect(nats_server.url, source="/tests")
    process = await _wi_up(nats_server.url, data_dir, fleet)
    pressures = [_pressure() for _ in range(WORKLOADS)]
    try:
        await _placed(bus, audit)

        async def trickle() -> None:  # events keep coming while the process dies
            for pressure in pressures:
                await bus.publish(pressure)
                await asyncio.sleep(0.02)

        publishing = asyncio.create_task(trickle())
        await eventually(lambda: _evictions(audit), timeout_s=30)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        at_kill = len(_evictions(audit))
        await publishing
        assert at_kill < WORKLOADS, "the process finished before it was killed; the test proves nothing"

        process = await _wi_up(nats_server.url, data_dir, fleet)
        await eventually(lambda: len(_evictions(audit)) >= WORKLOADS, timeout_s=60)

        async def all_notices_sent() -> (
            bool
        ):  # those of a batch killed before it published come after the ack wait
            return await bus_count(nats_server.url, "wi.v1.notices.acme.*.eviction") >= WORKLOADS

        await eventually_async(all_notices_sent, timeout_s=60)
        await asyncio.sleep(1)  # time for any repeat to show
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await bus.close()

    evicted = _evictions(audit)
    assert len(evicted) == WORKLOADS and len(set(evicted)) == WORKLOADS, "each instance evicted exactly once"
    per_input = Counter(d.input_id for d in audit.all_for("spot-harvest"))
    assert per_input == {p.event_id: 1 for p in pressures}, "every event decided once, none lost"
    notices = await bus_count(nats_server.url, "wi.v1.notices.acme.*.eviction")
    assert notices == WORKLOADS, f"{notices} eviction notices on the bus for {WORKLOADS} evictions"
    print(f"killed after {at_kill} of {WORKLOADS} evictions; after the restart: {len(evicted)}, all distinct")


async def test_sigkill_between_commit_and_publish_sends_the_recorded_notices_after_the_restart(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    fleet = write_small_fleet(tmp_path / "fleet.json", "spot", servers=4, fault_domains=2)
    data_dir = tmp_path / "wi"
    audit = DecisionLog(create_db_engine(f"sqlite:///{data_dir / 'wi.db'}"))
    bus = await Bus.connect(nats_server.url, source="/tests")
    process = await _wi_up(nats_server.url, data_dir, fleet)
    pressure = _pressure()
    try:
        await _placed(bus, audit)
        # The notices stream goes away (as a stream that lost its quorum would): what the services
        # decide now is recorded, but its notices cannot be published.
        await bus.js.delete_stream("WI_NOTICES")
        await bus.publish(pressure)
        await eventually(lambda: audit.for_input("spot-harvest", pressure.event_id), timeout_s=30)
        process.send_signal(signal.SIGKILL)  # committed, not published, not acknowledged
        await process.wait()
        assert await bus_count(nats_server.url, "wi.v1.notices.>", missing_ok=True) == 0

        process = await _wi_up(nats_server.url, data_dir, fleet)  # sets the notices stream up again
        # the pressure comes back after the ack wait, and its recorded notice is sent
        await eventually_async(lambda: bus_count(nats_server.url, "wi.v1.notices.>", missing_ok=True), 60)
        await asyncio.sleep(1)  # time for any repeat to show
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await bus.close()

    [decision] = audit.for_input("spot-harvest", pressure.event_id)
    assert decision.action == "notify", "decided once, before the kill, and not again"
    [notice] = decision.notices
    assert await bus_count(nats_server.url, f"wi.v1.notices.acme.{notice.workload}.eviction") == 1


async def bus_count(url: str, subject: str, missing_ok: bool = False) -> int:
    """How many messages the notices stream holds on ``subject`` (0 if it is gone and ``missing_ok``)."""
    bus = await Bus.connect(url, source="/tests")
    try:
        info = await bus.js.stream_info("WI_NOTICES", subjects_filter=subject)
        return sum((info.state.subjects or {}).values())
    except nats.js.errors.NotFoundError:
        if missing_ok:
            return 0
        raise
    finally:
        await bus.close()
