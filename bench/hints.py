"""Hint ingestion end to end: hints sent by workloads until the registry has stored the last of them.

WI over NATS: ``--clients`` SDK clients (one workload each, each on its own NATS connection) send
``--hints`` hints between them, each client one after another as a workload would, to a `wi up` of its
own process; the clock stops when the registry's watermark (written in the transaction that stores the
hints) reaches the stream's last sequence. WI over HTTP: wrk's ``--clients`` connections POST one hint
each to the gateway for ``--seconds``; the clock stops when the last is stored. Raw: the same JSON
bytes published by plain nats-py to a stream of the same configuration, windowed (``publish_async``),
until the last is acknowledged: what the bus takes when nobody reads what it stores. Goal: WI at least
50 % of raw.

Run: ``.venv/bin/python bench/hints.py [--hints N] [--clients C] [--seconds S]
[--database sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import nats
from gateway import load
from harness import Record, WiUp, hints_stored, print_records, wi_up
from nats.js.api import StreamConfig
from wi_sdk import Evictability, WorkloadClient

GOAL = 0.5


def _hint(client: WorkloadClient, n: int) -> Evictability:
    return client.new(Evictability, evictable=n % 2 == 0, min_notice_s=60 + n % 600)


async def _over_nats(up: WiUp, count: int, clients: int) -> float:
    """Hints per second, first send to stored, from SDK clients over NATS."""
    workloads = [
        WorkloadClient(tenant="bench", workload=f"nats-{i}", url=up.nats_url, token=up.tenant_token)
        for i in range(clients)
    ]
    for client in workloads:
        await client.__aenter__()
    try:

        async def send(client: WorkloadClient, share: int) -> None:
            for n in range(share):
                await client.hint(_hint(client, n))

        start = time.perf_counter()
        await asyncio.gather(*(send(c, count // clients) for c in workloads))
        await hints_stored(up)
        return (count // clients * clients) / (time.perf_counter() - start)
    finally:
        for client in workloads:
            await client.close()


async def _over_http(up: WiUp, seconds: float, connections: int) -> float:
    """Hints per second, first POST to stored, from wrk's connections POSTing to the gateway."""
    url = f"{up.http_url}/v1/workloads/bench-http/hints"
    start = time.perf_counter()
    run = await asyncio.to_thread(load, url, up.tenant_token, connections, seconds)
    assert run.errors == 0, f"the gateway answered {run.errors} requests with an error"
    await hints_stored(up)
    return run.ok / (time.perf_counter() - start)


async def _raw(up: WiUp, count: int) -> float:
    """Messages per second: the same bytes into a stream like WI_HINTS, windowed, until all are stored."""
    nc = await nats.connect(up.nats_url, token=up.platform_token)
    js = nc.jetstream()
    try:
        hints_stream = (await js.stream_info("WI_HINTS")).config
        await js.add_stream(
            StreamConfig(
                name="BENCH_RAW",
                subjects=["bench.raw.>"],
                storage=hints_stream.storage,
                duplicate_window=hints_stream.duplicate_window,
            )
        )
        body = Evictability(tenant="bench", workload="raw", evictable=True, min_notice_s=120)
        payloads = [
            (
                f"bench.raw.w{i % 50}",
                body.model_copy(update={"hint_id": f"raw-{i}"}).model_dump_json().encode(),
            )
            for i in range(count)
        ]
        start = time.perf_counter()
        for i, (subject, payload) in enumerate(payloads):
            await js.publish_async(subject, payload, headers={"Nats-Msg-Id": f"raw-{i}"})
        await js.publish_async_completed()
        elapsed = time.perf_counter() - start
        await js.delete_stream("BENCH_RAW")
        return count / elapsed
    finally:
        await nc.close()


async def measure(
    count: int = 5000,
    clients: int = 50,
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
    seconds: float = 5.0,
) -> list[Record]:
    """Hint ingestion over NATS for each database and over HTTP on SQLite, each against raw publish."""
    records = []
    for db in databases:
        async with wi_up(db) as up:
            raw = await _raw(up, count)
            wi = await _over_nats(up, count, clients)
            records.append(_record(f"hints stored, {clients} SDK clients over NATS, {db}", wi, raw))
            if db == "sqlite":
                raw = await _raw(up, count)
                wi = await _over_http(up, seconds, clients)
                records.append(_record(f"hints stored, {clients} HTTP connections (wrk), {db}", wi, raw))
    return records


def _record(name: str, wi: float, raw: float) -> Record:
    return Record(
        name,
        round(wi, 1),
        "hints/s",
        "windowed JetStream publish of the same bytes",
        round(raw, 1),
        f"ratio >= {GOAL}",
        wi / raw >= GOAL,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hints", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0, help="of wrk's load over HTTP")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    arguments = parser.parse_args()
    databases = tuple(arguments.database or ["sqlite", "postgresql"])
    print_records(asyncio.run(measure(arguments.hints, arguments.clients, databases, arguments.seconds)))
