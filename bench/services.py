"""A platform service's decision path against plain nats-py, in one run on one embedded nats-server.

WI: the allocator in its ``ServiceRunner`` works through deployment requests already on the bus: consume,
wait for the registry's hints, read the hints, take the service's lock, decide, record the decision in
SQLite, publish the placement notice, ack. Raw: a bare pull consumer fetches the same requests' bytes,
publishes one reply each to a stream and acks. The ratio is the price of deciding with an audit trail.
Run: ``.venv/bin/python bench/services.py [--requests N]``. Prints decisions per second and WI/raw.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from wi_services import ServiceContext, ServiceRunner, load_fleet
from wi_services.allocator import VmAllocator

from wi.audit import AuditStore
from wi.bus import Bus
from wi.contract import DeploymentRequest
from wi.registry import Registry, RegistryStore
from wi.server import EmbeddedNatsServer

RAW_IN, RAW_OUT = "BENCH_RAW_IN", "BENCH_RAW_OUT"


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
        for msg in await sub.fetch(64, timeout=5):
            await bus.js.publish(msg.subject.replace("bench.in.", "bench.out."), msg.data)
            await msg.ack()
            seen += 1
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    return elapsed


async def _wi(bus: Bus, store: RegistryStore, requests: list[DeploymentRequest]) -> float:
    """The allocator's runner deciding on requests already published."""
    for request in requests:
        await bus.publish(request)
    audit = AuditStore(store.engine)
    runner = ServiceRunner(VmAllocator(ServiceContext(load_fleet())), bus, store, audit)
    stop = asyncio.Event()
    await runner.start()
    start = time.perf_counter()
    task = asyncio.create_task(runner.run(stop))
    last = requests[-1].message_id  # one consumer decides in stream order: the last one comes last
    while True:
        if await asyncio.to_thread(audit.for_input, "allocator", last):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return elapsed


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch) / "nats", port=0)
        server.start()
        try:
            bus = await Bus.connect(server.url, source="/bench")
            await bus.ensure_streams()
            store = RegistryStore.open(f"sqlite:///{Path(scratch) / 'wi.db'}")
            registry = Registry(bus, store)
            await registry.start()
            stop = asyncio.Event()
            registry_task = asyncio.create_task(registry.run(stop))
            raw = await _raw(bus, _requests(count))
            wi = await _wi(bus, store, _requests(count))
            stop.set()
            await registry_task
            await bus.close()
            store.close()
        finally:
            server.stop()
    print(f"{'':<10}{'raw nats-py':>14}{'WI service':>14}{'WI/raw':>9}")
    print(f"{'decide':<10}{count / raw:>10,.0f} m/s{count / wi:>10,.0f} m/s{raw / wi:>9.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    asyncio.run(main(parser.parse_args().requests))
