"""A service process killed with SIGKILL mid-stream and restarted repeats no action and loses none."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from tests.platform import eventually
from tests.services.fleets import write_small_fleet
from wi.audit import AuditStore
from wi.bus import Bus
from wi.contract import CapacityPressure, DeploymentRequest, Evictability
from wi.database import create_db_engine
from wi.server import EmbeddedNatsServer

WI = Path(sys.executable).parent / "wi"
WORKLOADS = 40


async def _wi_up(nats_url: str, data_dir: Path, fleet: Path) -> asyncio.subprocess.Process:
    """``wi up`` running the allocator and the Spot/Harvest manager against an outside nats-server."""
    env = {
        **os.environ,
        "WI_NATS_URL": nats_url,
        "WI_FLEET": str(fleet),
        "WI_SERVICES": "allocator,spot-harvest",
    }
    process = await asyncio.create_subprocess_exec(
        str(WI),
        "up",
        "--data-dir",
        str(data_dir),
        "--http-port",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen = []
    async with asyncio.timeout(30):
        while not (line := (await process.stdout.readline()).decode()).strip().startswith("HTTP"):
            seen.append(line)
            assert line, "wi up did not come up:\n" + "".join(seen)
    asyncio.get_running_loop().create_task(_drain(process))
    return process


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


async def test_sigkill_mid_stream_then_restart_repeats_no_eviction_and_loses_none(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    fleet = write_small_fleet(tmp_path / "fleet.json", "spot", servers=4, fault_domains=2)
    data_dir = tmp_path / "wi"
    audit = AuditStore(create_db_engine(f"sqlite:///{data_dir / 'wi.db'}"))
    bus = await Bus.connect(nats_server.url, source="/tests")
    process = await _wi_up(nats_server.url, data_dir, fleet)
    try:
        for n in range(WORKLOADS):
            await bus.publish(Evictability(tenant="acme", workload=f"w{n}", evictable=True, min_notice_s=30))
            await bus.publish(
                DeploymentRequest(
                    tenant="acme", workload=f"w{n}", deployment="d", instances=1, cores=4, memory_gb=8
                )
            )
        await eventually(lambda: len(audit.all_for("allocator")) == WORKLOADS, timeout_s=60)

        def evictions() -> list[str]:
            return [d.detail["instance"] for d in audit.all_for("spot-harvest") if d.action == "notify"]

        pressures = [
            CapacityPressure(cluster="c1", pool="spot", cores_needed=4, needed_within_s=60)
            for _ in range(WORKLOADS)
        ]
        for pressure in pressures:
            await bus.publish(pressure)
        await eventually(evictions, timeout_s=30)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        at_kill = len(evictions())
        assert at_kill < WORKLOADS, "the process finished before it was killed; the test proves nothing"

        process = await _wi_up(nats_server.url, data_dir, fleet)
        await eventually(lambda: len(evictions()) >= WORKLOADS, timeout_s=60)
        await asyncio.sleep(1)  # time for any repeat to show
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await bus.close()

    evicted = evictions()
    assert len(evicted) == WORKLOADS and len(set(evicted)) == WORKLOADS, "each instance evicted exactly once"
    per_input = Counter(d.input_id for d in audit.all_for("spot-harvest"))
    assert per_input == {p.event_id: 1 for p in pressures}, "every event decided once, none lost"
    notices = await bus_count(nats_server.url, "wi.v1.notices.acme.*.eviction")
    assert notices == WORKLOADS, f"{notices} eviction notices on the bus for {WORKLOADS} evictions"
    print(f"killed after {at_kill} of {WORKLOADS} evictions; after the restart: {len(evicted)}, all distinct")


async def bus_count(url: str, subject: str) -> int:
    """How many messages the notices stream holds on ``subject``."""
    bus = await Bus.connect(url, source="/tests")
    try:
        info = await bus.js.stream_info("WI_NOTICES", subjects_filter=subject)
        return sum((info.state.subjects or {}).values())
    finally:
        await bus.close()
