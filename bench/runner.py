"""The allocator's whole runner path against plain nats-py, in one run on one embedded nats-server.

WI: the allocator in its ``ServiceRunner`` works through deployment requests already on the bus, batch
by batch: consume, wait for the registry's hints, read them, take a turn at the decision log, decide,
record the decisions in one transaction, publish the placement notices, ack. The registry records the
notices meanwhile, either in the same process (as ``wi up`` runs everything) or in a process of its
own (``wi up --services none`` beside a service process: how to use a second core). Raw: a bare pull
consumer fetches the same requests' bytes in batches of the same size, publishes one reply each to a
stream and acks. The ratio is the price of deciding with an audit trail.

Run: ``.venv/bin/python bench/runner.py [--requests N] [--database sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from harness import Record, print_records
from harness import database as harness_database
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from wi_services.allocator import VmAllocator

from wi.bus import Bus
from wi.contract import DeploymentRequest
from wi.engine import DecisionLog, ServiceContext, ServiceRunner, load_fleet
from wi.engine.runner import SERVICE_BATCH
from wi.registry import Registry, RegistryStore
from wi.server import EmbeddedNatsServer

RAW_IN, RAW_OUT = "BENCH_RAW_IN", "BENCH_RAW_OUT"
GOAL = 0.5
WI = Path(sys.executable).parent / "wi"


def _requests(count: int) -> list[DeploymentRequest]:
    return [
        DeploymentRequest(tenant="bench", workload=f"w{i}", deployment="d", instances=1, cores=1, memory_gb=1)
        for i in range(count)
    ]


async def _raw(bus: Bus, requests: list[DeploymentRequest]) -> float:
    """The baseline: fetch each request's bytes, publish a reply, ack."""
    await bus.js.add_stream(StreamConfig(name=RAW_IN, subjects=["bench.in.>"]))
    await bus.js.add_stream(StreamConfig(name=RAW_OUT, subjects=["bench.out.>"]))
    for r in requests:
        await bus.js.publish(f"bench.in.{r.workload}", r.model_dump_json().encode())
    await bus.js.add_consumer(RAW_IN, ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT))
    sub = await bus.js.pull_subscribe_bind(durable="raw", stream=RAW_IN)
    start, seen = time.perf_counter(), 0
    while seen < len(requests):
        for msg in await sub.fetch(SERVICE_BATCH, timeout=5):
            await bus.js.publish(msg.subject.replace("bench.in.", "bench.out."), msg.data)
            await msg.ack()
            seen += 1
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    for stream in (RAW_IN, RAW_OUT):
        await bus.js.delete_stream(stream)
    return elapsed


async def _wi(bus: Bus, store: RegistryStore, requests: list[DeploymentRequest]) -> float:
    """The allocator's runner deciding on requests already published."""
    for request in requests:
        await bus.publish(request)
    log = DecisionLog(store.engine)
    runner = ServiceRunner(VmAllocator(ServiceContext(load_fleet())), bus, store, log)
    stop = asyncio.Event()
    await runner.start()
    start = time.perf_counter()
    task = asyncio.create_task(runner.run(stop))
    last = requests[-1].message_id  # one consumer decides in stream order: the last one comes last
    while not await asyncio.to_thread(log.for_input, "allocator", last):  # noqa: ASYNC110  # polls SQL
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return elapsed


@contextlib.asynccontextmanager
async def _registry(
    bus: Bus, store: RegistryStore, nats_url: str, url: str, own_process: bool
) -> AsyncIterator[None]:
    """The registry, in this process or in a `wi up --services none` of its own."""
    if own_process:
        with tempfile.TemporaryDirectory() as data_dir:
            environment = {
                **os.environ,
                "WI_NATS_URL": nats_url,
                "WI_DATABASE_URL": url,
                "WI_SERVICES": "none",
            }
            process = await asyncio.create_subprocess_exec(
                str(WI),
                "up",
                "--data-dir",
                data_dir,
                "--http-port",
                "0",
                env=environment,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert process.stdout is not None
            while not (await process.stdout.readline()).decode().strip().startswith("HTTP"):
                assert process.returncode is None, "the registry's wi up did not come up"
            drain = asyncio.create_task(process.stdout.read())
            try:
                yield
            finally:
                process.terminate()
                await process.wait()
                await drain
        return
    registry, stop = Registry(bus, store), asyncio.Event()
    await registry.start()
    task = asyncio.create_task(registry.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def run(count: int, database: str, own_process: bool) -> tuple[float, float]:
    """(raw, WI) decisions per second, measured in one run on one nats-server."""
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch) / "nats", port=0)
        server.start()
        try:
            with harness_database(database, Path(scratch)) as url:
                bus = await Bus.connect(server.url, source="/bench")
                await bus.ensure_streams()
                store = RegistryStore.open(url)
                try:
                    async with _registry(bus, store, server.url, url, own_process):
                        raw = await _raw(bus, _requests(count))
                        wi = await _wi(bus, store, _requests(count))
                finally:
                    await bus.close()
                    store.close()
        finally:
            server.stop()
    return count / raw, count / wi


async def measure(count: int = 2000, databases: Sequence[str] = ("sqlite", "postgresql")) -> list[Record]:
    """Decisions per second of the allocator's runner against raw consume-publish-ack, per database and
    with the registry in this process or its own."""
    records = []
    for database in databases:
        for own_process in (False, True):
            raw, wi = await run(count, database, own_process)
            where = "registry in its own process" if own_process else "registry in the same process"
            records.append(
                Record(
                    f"allocator runner, {database}, {where}",
                    round(wi, 1),
                    "decisions/s",
                    "nats-py fetch, publish, ack",
                    round(raw, 1),
                    f"ratio >= {GOAL}",
                    wi / raw >= GOAL,
                )
            )
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    arguments = parser.parse_args()
    print_records(asyncio.run(measure(arguments.requests, arguments.database or ["sqlite", "postgresql"])))
