"""Requests answered a batch at a time, on a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg

from wi.bus import BatchedResponder, Bus, reply


async def test_a_responder_stopped_even_mid_batch_answers_again_once_started(bus: Bus) -> None:
    held = asyncio.Event()
    release = asyncio.Event()
    batches: list[int] = []

    async def echo(requests: list[Msg]) -> None:
        batches.append(len(requests))
        if len(batches) == 2:  # the second batch hangs until its stop is given up
            held.set()
            await release.wait()
        for msg in requests:
            await reply(msg, msg.data)

    responder = BatchedResponder("echo", echo, max_batch=500)
    await responder.start(bus.nc, "test.echo", "q")
    assert (await bus.nc.request("test.echo", b"1", timeout=5)).data == b"1"
    await responder.stop(bus.nc)

    await responder.start(bus.nc, "test.echo", "q")
    hanging = asyncio.create_task(bus.nc.request("test.echo", b"2", timeout=5))
    await held.wait()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(responder.stop(bus.nc), 0.2)  # a shutdown that gives up on the batch
    await responder.start(bus.nc, "test.echo", "q")
    asked = [str(i).encode() for i in range(50)]
    answers = await asyncio.gather(*(bus.nc.request("test.echo", body, timeout=5) for body in asked))
    assert [a.data for a in answers] == asked
    await responder.stop(bus.nc)
    hanging.cancel()


async def test_requests_arriving_at_once_are_answered_in_few_batches(bus: Bus) -> None:
    batches: list[int] = []

    async def echo(requests: list[Msg]) -> None:
        batches.append(len(requests))
        await asyncio.sleep(0.01)  # I/O for the batch, while more requests arrive
        for msg in requests:
            await reply(msg, msg.data)

    responder = BatchedResponder("echo", echo, max_batch=100)
    await responder.start(bus.nc, "test.echo", "q")
    try:
        await asyncio.gather(*(bus.nc.request("test.echo", b"x", timeout=10) for _ in range(1000)))
    finally:
        await responder.stop(bus.nc)
    assert sum(batches) == 1000 and max(batches) == 100
    assert len(batches) < 100  # not one request a batch
