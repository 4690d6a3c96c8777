"""Consuming in batches: all or nothing per batch, rejections parked, a poisoned message isolated."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tests.bus.helpers import parked
from wi.bus import DEADLETTER_REASON, Batch, Bus, ConsumerSpec, Interrupted
from wi.contract import Family, Priority

SPEC = ConsumerSpec(Family.HINT, "test-batches", ack_wait_s=5.0, max_attempts=2)


def _hints(count: int) -> list[Priority]:
    return [Priority(tenant="acme", workload=f"w{n}", level="low") for n in range(count)]


async def _publish(bus: Bus, hints: list[Priority]) -> None:
    for hint in hints:
        await bus.publish(hint)


async def _until(condition: asyncio.Event, run: asyncio.Task[None], stop: asyncio.Event) -> None:
    await asyncio.wait_for(condition.wait(), 20)
    stop.set()
    await asyncio.wait_for(run, 10)


async def test_a_batch_comes_whole_in_stream_order_and_its_rejections_are_parked(bus: Bus) -> None:
    hints = _hints(10)
    await _publish(bus, hints)
    await bus.publish_raw("wi.v1.hints.acme.w5.priority", b"not json", {"ce-id": "x"})
    batches: list[list[Priority]] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> Mapping[int, str]:
        batches.append([d.message for d in batch.deliveries])  # type: ignore[misc]
        if sum(len(b) for b in batches) >= len(hints):
            done.set()
        return {d.stream_seq: "w3 is refused" for d in batch.deliveries if d.message.workload == "w3"}  # type: ignore[attr-defined]

    run = asyncio.create_task(bus.consume_batches(SPEC, handle, stop))
    await _until(done, run, stop)
    assert [h for batch in batches for h in batch] == hints, "every valid message once, in stream order"
    assert len(batches) == 1, "one fetch, one batch"
    reasons = sorted((m.headers or {})[DEADLETTER_REASON].split(":")[0] for m in await parked(bus, 2))
    assert reasons == ["invalid", "rejected"]


async def test_a_failed_batch_is_retried_one_by_one_so_a_poisoned_message_is_parked_alone(bus: Bus) -> None:
    hints = _hints(6)
    await _publish(bus, hints)
    applied: list[str] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> Mapping[int, str]:
        if any(d.message.workload == "w2" for d in batch.deliveries):  # type: ignore[attr-defined]
            raise RuntimeError("w2 breaks whatever batch it is in")
        applied.extend(d.message.workload for d in batch.deliveries)  # type: ignore[attr-defined]
        if len(applied) == len(hints) - 1:
            done.set()
        return {}

    run = asyncio.create_task(bus.consume_batches(SPEC, handle, stop))
    [dead] = await parked(bus, 1, timeout_s=20)
    await _until(done, run, stop)
    assert sorted(applied) == ["w0", "w1", "w3", "w4", "w5"], "the others applied, each once"
    assert "failed 2 times" in (dead.headers or {})[DEADLETTER_REASON]


async def test_interrupted_hands_the_whole_batch_back(bus: Bus) -> None:
    hints = _hints(4)
    await _publish(bus, hints)
    stop = asyncio.Event()
    seen: list[int] = []

    async def interrupted(batch: Batch) -> Mapping[int, str]:
        seen.append(len(batch.deliveries))
        stop.set()
        raise Interrupted

    await asyncio.wait_for(bus.consume_batches(SPEC, interrupted, stop), 10)
    again: list[Priority] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> Mapping[int, str]:
        again.extend(d.message for d in batch.deliveries)  # type: ignore[misc]
        if len(again) == len(hints):
            done.set()
        return {}

    run = asyncio.create_task(bus.consume_batches(SPEC, handle, stop))
    await _until(done, run, stop)
    assert seen == [4] and again == hints, "handed back whole, redelivered at once"
