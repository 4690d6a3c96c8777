"""Helpers for tests that consume from the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from nats.js.api import RawStreamMsg

from wi.bus import DEADLETTER_STREAM, Bus, ConsumerSpec, Delivery


@asynccontextmanager
async def consuming(
    bus: Bus, spec: ConsumerSpec, handler: Callable[[Delivery], Awaitable[None]] | None = None
) -> AsyncIterator[list[Delivery]]:
    """Runs a consumer in the background while the block runs; yields what it handled successfully."""
    handled: list[Delivery] = []
    stop = asyncio.Event()

    async def record(delivery: Delivery) -> None:
        if handler is not None:
            await handler(delivery)
        handled.append(delivery)

    consumer = asyncio.create_task(bus.consume(spec, record, stop))
    try:
        yield handled
    finally:
        stop.set()
        await consumer


async def parked(bus: Bus, count: int, timeout_s: float = 10.0) -> list[RawStreamMsg]:
    """The first ``count`` messages on the dead-letter stream, waiting for them to arrive."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        info = await bus.js.stream_info(DEADLETTER_STREAM.name)
        if info.state.messages >= count:
            return [await bus.js.get_msg(DEADLETTER_STREAM.name, seq) for seq in range(1, count + 1)]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{info.state.messages} parked messages, expected {count}")
        await asyncio.sleep(0.05)


async def collect(
    bus: Bus,
    spec: ConsumerSpec,
    count: int,
    handler: Callable[[Delivery], Awaitable[None]] | None = None,
    timeout_s: float = 10.0,
) -> list[Delivery]:
    """Consumes until ``count`` messages were handled successfully, then stops the consumer."""
    async with consuming(bus, spec, handler) as handled:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(handled) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"handled {len(handled)} messages, expected {count}")
            await asyncio.sleep(0.01)
    return handled
