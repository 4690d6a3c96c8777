"""The allocator on a running platform: hints change placements; a replay repeats nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from wi_sdk import Received, WorkloadClient
from wi_services import ServiceContext, ServiceRunner, load_fleet
from wi_services.allocator import VmAllocator

from tests.platform import Running, eventually
from wi.audit import AuditStore
from wi.contract import Availability, Evictability, Placement, Priority

WI = Path(sys.executable).parent / "wi"


async def test_a_hint_change_alters_the_placement_and_the_audit_says_why(running: Running) -> None:
    placements: list[Placement] = []
    async with WorkloadClient(
        tenant="acme", workload="trainer", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(Placement)
        async def placed(notice: Received[Placement]) -> None:
            placements.append(notice.notice)

        client.start()
        await client.hint(client.new(Evictability, evictable=True, min_notice_s=60))
        await client.deploy(deployment="batch", instances=2, cores=8, memory_gb=32)
        await eventually(lambda: len(placements) == 1)
        await client.hint(
            client.new(Evictability, evictable=False),
            client.new(Priority, level="high"),
            client.new(Availability, target=0.999),
        )
        await client.deploy(deployment="batch", instances=2, cores=8, memory_gb=32)
        await eventually(lambda: len(placements) == 2)
    assert [(p.outcome, p.pool) for p in placements] == [("placed", "spot"), ("placed", "regular")]
    assert "evictable: spot" in placements[0].reason
    assert "regular capacity only" in placements[1].reason

    audit = await asyncio.to_thread(
        subprocess.run,
        [str(WI), "audit", "--data-dir", str(running.endpoints.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "allocator    place       acme/trainer  batch: placed on spot in" in audit.stdout
    assert "pool filter removed" in audit.stdout and "weighers chose" in audit.stdout


async def test_a_replayed_request_repeats_no_decision_and_no_notice(running: Running) -> None:
    async with WorkloadClient(
        tenant="acme", workload="etl", url=running.endpoints.nats_url, token=running.acme
    ) as client:
        request_id = await client.deploy(deployment="nightly", instances=1, cores=4, memory_gb=8)
    assert running.platform.store is not None
    store = running.platform.store
    await eventually(lambda: store.notice(f"placement-{request_id}") is not None)
    before = (await running.bus.js.stream_info("WI_NOTICES")).state.messages

    # As if the service crashed before acking: its consumer forgets, the request comes again.
    await running.bus.js.delete_consumer("WI_DEPLOYMENTS", "wi-svc-allocator-deployment")
    audit = AuditStore(store.engine)
    runner = ServiceRunner(VmAllocator(ServiceContext(load_fleet())), running.bus, store, audit)
    stop = asyncio.Event()
    await runner.start()
    task = asyncio.create_task(runner.run(stop))
    for _ in range(300):  # until the replayed request is handled and acknowledged
        info = await running.bus.js.consumer_info("WI_DEPLOYMENTS", "wi-svc-allocator-deployment")
        if info.delivered.stream_seq >= 1 and info.num_ack_pending == 0 and info.num_pending == 0:
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError("the replayed request was not handled")
    stop.set()
    await task
    assert (await running.bus.js.stream_info("WI_NOTICES")).state.messages == before
    assert len(audit.for_input("allocator", request_id)) == 1
    allocator = runner.service
    assert isinstance(allocator, VmAllocator)
    assert sum(allocator.usage.cores.values()) == 4, "the replay booked the instance a second time"
