"""SIGTERM with a full batch in flight: `wi up` drains within its grace period, loses nothing it acknowledged
and leaves nothing it handled unacknowledged."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from tests.platform import eventually
from tests.services.fleets import write_small_fleet
from tests.services.test_crash import _wi_up
from wi.bus import Bus
from wi.contract import DeploymentRequest, Priority
from wi.database import create_db_engine
from wi.engine import DecisionLog
from wi.server import EmbeddedNatsServer

REQUESTS = 2000
GRACE_S = 2


async def test_sigterm_with_a_full_batch_in_flight_drains_in_the_grace_period_and_loses_nothing(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    fleet = write_small_fleet(tmp_path / "fleet.json", "regular", servers=64, fault_domains=4)
    data_dir = tmp_path / "wi"
    audit = DecisionLog(create_db_engine(f"sqlite:///{data_dir / 'wi.db'}"))
    bus = await Bus.connect(nats_server.url, source="/tests")
    requests = [
        DeploymentRequest(tenant="acme", workload=f"w{n}", deployment="d", instances=1, cores=1, memory_gb=1)
        for n in range(REQUESTS)
    ]
    env = {"WI_SERVICES": "allocator", "WI_SHUTDOWN_GRACE_S": str(GRACE_S)}
    first: list[str] = []
    process = await _wi_up(nats_server.url, data_dir, fleet, env, first)
    try:

        async def publish() -> None:
            for request in requests:  # each request follows a hint, so each waits for the registry
                await bus.publish(Priority(tenant="acme", workload=request.workload, level="low"))
                await bus.publish(request)

        # The stop comes while inputs still arrive, so it finds batches in flight however fast this
        # machine decides (publishing first and stopping after let a quiet machine decide them all).
        publishing = asyncio.create_task(publish())
        await eventually(lambda: len(audit.all_for("allocator")) >= 1, timeout_s=60)
        process.send_signal(signal.SIGTERM)
        # A liveness bound, not a timing: before, each fetched input waited up to 10 s for a registry that
        # had stopped, so a batch of 64 took minutes.
        async with asyncio.timeout(60):
            assert await process.wait() == 0
        decided_at_stop = len(audit.all_for("allocator"))
        await publishing
        assert decided_at_stop < REQUESTS, "all were decided before the stop; the test proves nothing"

        second: list[str] = []
        process = await _wi_up(nats_server.url, data_dir, fleet, env, second)
        await eventually(lambda: len(audit.all_for("allocator")) >= REQUESTS, timeout_s=120)
        await asyncio.sleep(0.5)  # time for a repeat to show
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await bus.close()
    per_input = Counter(d.input_id for d in audit.all_for("allocator"))
    assert per_input == {r.request_id: 1 for r in requests}, "every request decided exactly once"
    handled_again = [line for line in second if "decided before" in line]
    assert handled_again == [], "an input handled before the stop was left unacknowledged"
    print(f"{decided_at_stop} of {REQUESTS} decided before the SIGTERM; all {REQUESTS} after the restart")
