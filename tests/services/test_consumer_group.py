"""Two processes of one service share its inputs and decide in turn on the same state."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from wi_services.allocator import VmAllocator

from tests.platform import eventually, start_platform
from tests.services.fleets import write_small_fleet
from wi.contract import DeploymentRequest, Message
from wi.engine import DecisionLog, ServiceContext, ServiceRunner, View, load_fleet
from wi.engine import runner as runner_module

REQUESTS = 20


class CountingAllocator(VmAllocator):
    """The allocator, counting the inputs this instance decided."""

    decided = 0

    def decide(self, message: Message, view: View, now: datetime) -> list:  # type: ignore[type-arg]
        self.decided += 1
        return super().decide(message, view, now)


async def test_two_runners_of_the_allocator_share_requests_and_never_overbook(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One input per fetch: JetStream hands each to the next waiting pull, so both runners get some
    # however fast or slow this machine is (with big batches one fetch may take every request).
    monkeypatch.setattr(runner_module, "SERVICE_BATCH", 1)
    fleet_file = write_small_fleet(tmp_path / "fleet.json", "regular", servers=2, fault_domains=2)
    async with start_platform(tmp_path / "wi", services="none", database_url=database_url) as running:
        platform = running.platform
        assert platform.bus is not None and platform.store is not None
        audit = DecisionLog(platform.store.engine)
        context = ServiceContext(load_fleet(fleet_file))
        allocators = [CountingAllocator(context), CountingAllocator(context)]
        runners = [ServiceRunner(a, platform.bus, platform.store, audit) for a in allocators]
        stop = asyncio.Event()
        for runner in runners:
            await runner.start()
        tasks = [asyncio.create_task(runner.run(stop)) for runner in runners]
        try:
            for n in range(REQUESTS):
                await platform.bus.publish(
                    DeploymentRequest(
                        tenant="acme", workload=f"w{n}", deployment="d", instances=1, cores=16, memory_gb=8
                    )
                )
            await eventually(lambda: len(audit.all_for("allocator")) >= REQUESTS, timeout_s=60)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    decisions = audit.all_for("allocator")
    placed = [d for d in decisions if d.action == "place"]
    cores_per_server = Counter(server for d in placed for server in d.detail["servers"])
    assert len(decisions) == REQUESTS
    assert len(placed) == 8 and all(n * 16 <= 64 for n in cores_per_server.values()), cores_per_server
    assert all(a.decided > 0 for a in allocators), "both runners took a share"
