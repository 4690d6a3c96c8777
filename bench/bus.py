"""WI's bus against plain nats-py, in one run on one embedded nats-server.

Publish: ``Bus.publish`` (CloudEvents headers, JSON of a validated model, Nats-Msg-Id) against
``js.publish`` of the same bytes with only a Nats-Msg-Id. Consume: ``Bus.consume`` (header checks, contract
validation, subject check, a span per message, ack) against a bare pull-consumer fetch-and-ack.
Run: ``.venv/bin/python bench/bus.py [--messages N]``. Prints messages per second and the ratio WI/raw.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from wi.bus import Bus, ConsumerSpec, Delivery, subject_for
from wi.contract import Evictability, Family
from wi.server import EmbeddedNatsServer


def _hints(count: int, run: str) -> list[Evictability]:
    return [
        Evictability(
            tenant="bench", workload=f"w{i % 50}", evictable=True, min_notice_s=120, hint_id=f"{run}-{i}"
        )
        for i in range(count)
    ]


RAW_STREAM = "BENCH_RAW"


async def _publish_raw(bus: Bus, hints: list[Evictability]) -> float:
    """The baseline: the same bytes into a stream of the same configuration, with only a Nats-Msg-Id."""
    hints_stream = (await bus.js.stream_info("WI_HINTS")).config
    await bus.js.add_stream(
        StreamConfig(
            name=RAW_STREAM,
            subjects=["bench.raw.>"],
            storage=hints_stream.storage,
            duplicate_window=hints_stream.duplicate_window,
        )
    )
    bodies = [
        ("bench.raw." + subject_for(h).removeprefix("wi.v1.hints."), h.model_dump_json().encode(), h.hint_id)
        for h in hints
    ]
    start = time.perf_counter()
    for subject, body, msg_id in bodies:
        await bus.js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})
    return time.perf_counter() - start


async def _publish_wi(bus: Bus, hints: list[Evictability]) -> float:
    start = time.perf_counter()
    for hint in hints:
        await bus.publish(hint)
    return time.perf_counter() - start


async def _consume_raw(bus: Bus, count: int) -> float:
    config = ConsumerConfig(durable_name="bench-raw", ack_policy=AckPolicy.EXPLICIT)
    await bus.js.add_consumer(RAW_STREAM, config)
    sub = await bus.js.pull_subscribe_bind(durable="bench-raw", stream=RAW_STREAM)
    start, seen = time.perf_counter(), 0
    while seen < count:
        for msg in await sub.fetch(64, timeout=5):
            await msg.ack()
            seen += 1
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    return elapsed


async def _consume_wi(bus: Bus, count: int) -> float:
    stop, seen = asyncio.Event(), 0

    async def handle(_: Delivery) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            stop.set()

    start = time.perf_counter()
    await bus.consume(ConsumerSpec(Family.HINT, "bench-wi"), handle, stop)
    return time.perf_counter() - start


async def main(messages: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedNatsServer(Path(scratch), port=0)
        server.start()
        try:
            bus = await Bus.connect(server.url, source="/bench")
            await bus.ensure_streams()
            await _publish_wi(bus, _hints(200, "warm"))  # warm-up; consumed below with the rest
            raw_pub = await _publish_raw(bus, _hints(messages, "raw"))
            wi_pub = await _publish_wi(bus, _hints(messages, "wi"))
            raw_con = await _consume_raw(bus, messages)
            total = 200 + messages
            wi_con = await _consume_wi(bus, total)
            await bus.close()
        finally:
            server.stop()
    print(f"{'':<10}{'raw nats-py':>14}{'WI bus':>12}{'WI/raw':>9}")
    for name, raw_rate, wi_rate in (
        ("publish", messages / raw_pub, messages / wi_pub),
        ("consume", messages / raw_con, total / wi_con),
    ):
        print(f"{name:<10}{raw_rate:>10,.0f} m/s{wi_rate:>8,.0f} m/s{wi_rate / raw_rate:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    asyncio.run(main(parser.parse_args().messages))
