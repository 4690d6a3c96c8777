"""The allocator on a running platform: hints change placements; a replay repeats nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from wi_sdk import Received, WorkloadClient
from wi_services.allocator import VmAllocator

from tests.platform import Running, eventually
from wi.contract import Availability, Evictability, Placement, Priority, derived_id
from wi.engine import DecisionLog, ServiceContext, ServiceRunner, load_fleet

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
    await eventually(lambda: store.notice(derived_id("placement", request_id, 0)) is not None)
    before = (await running.bus.js.stream_info("WI_NOTICES")).state.messages

    # As if the service crashed before acking: its consumer forgets, the request comes again.
    await running.bus.js.delete_consumer("WI_DEPLOYMENTS", "wi-svc-allocator-deployment")
    audit = DecisionLog(store.engine)
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
    assert sum(use.cores for use in runner.inventory.use.values()) == 4, "the replay booked it twice"


async def test_a_deployment_scaled_over_nats_and_ended_over_http_frees_what_it_ran(running: Running) -> None:
    placements: list[Placement] = []
    async with WorkloadClient(
        tenant="acme", workload="shop", url=running.endpoints.nats_url, token=running.acme
    ) as client:

        @client.on(Placement)
        async def placed(notice: Received[Placement]) -> None:
            placements.append(notice.notice)

        client.start()
        await client.deploy(deployment="api", instances=2, cores=4, memory_gb=8)
        await eventually(lambda: len(placements) == 1)
        await client.scale("api", 3)
        await eventually(lambda: len(placements) == 2)
    assert placements[1].instances is not None and len(placements[1].instances) == 1

    async def wi(*args: str) -> str:
        command = [str(WI), "deployments", *args, "-w", "shop"]
        command += ["--url", running.endpoints.http_url, "--token", running.acme]
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    scale_in, end = await wi("scale", "api", "1"), await wi("end", "api")
    assert running.platform.store is not None
    log = DecisionLog(running.platform.store.engine)
    await eventually(lambda: log.for_input("allocator", end))
    [scaled] = log.for_input("allocator", scale_in)
    [ended] = log.for_input("allocator", end)
    assert scaled.summary == "api: scaled in to 1; 2 of 3 instance(s) released"
    assert [reason.split(" on ")[0] for reason in scaled.reasons] == ["release api-1", "release api-2"]
    assert ended.summary == "api: deployment ended; 1 of 1 instance(s) released"
