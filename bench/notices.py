"""Notice delivery latency: from the platform's publish to the workload's handler, with many attached.

A `wi up` (no services) runs in a process of its own. ``N`` workloads attach with the SDK (one
``WorkloadClient`` each, on its own connection: NATS, or the gateway's long poll), or open the gateway's
Server-Sent Events stream; the platform then publishes ``--notices`` evictions, one every ``--gap-ms``,
each to a workload drawn at random, and the time from just before the publish to the handler's first
line (the SSE ``data:`` line) is one sample. Raw: a nats-py request/reply round trip on the same server,
from this process to a responder in this process. Goals: p99 over NATS at most 2x the raw round trip's
p99 at 10,000 workloads, and within 20 % from 100 to 10,000 workloads.

Attach storm: once N workloads are attached, each with one open notice, N attach requests are sent at
once (as when every client reconnects after a restart); the seconds until all are answered, against as
many requests at once to an echo responder on the same server.

Run: ``.venv/bin/python bench/notices.py [--workloads 1,100,1000,10000] [--notices N] [--gap-ms G]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
import nats
from harness import Record, WiUp, percentile, print_records, raise_open_files, rss_mb, wi_up
from nats.aio.client import Client as NatsClient
from wi_sdk import Eviction, Received, WorkloadClient

from wi.bus import Bus, attach_subject
from wi.contract import ATTACH_ANSWER, AttachError, utc_now

GOAL_VS_RAW = 2.0
GOAL_FLAT = 1.2
ATTACH_AT_ONCE = 200
WARM_UP_S = float(os.environ.get("WI_BENCH_WARM_UP_S", "300"))
SHARES = (0.5, 0.99, 0.999)
STORM_TIMEOUT_S = 120.0
SSE_RETRY_S = 0.5


class Arrivals:
    """When each notice reached its handler (perf_counter), and a wake-up for whoever waits on one."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Future[None]] = {}

    def arrived(self, notice_id: str) -> None:
        """Notes the arrival; the first one counts."""
        if notice_id not in self.at:
            self.at[notice_id] = time.perf_counter()
            if (future := self.waiting.pop(notice_id, None)) is not None and not future.done():
                future.set_result(None)


@asynccontextmanager
async def _sdk_clients(up: WiUp, url: str, count: int, arrivals: Arrivals) -> AsyncIterator[list[str]]:
    """``count`` SDK clients attached (handlers running), ``ATTACH_AT_ONCE`` connecting at a time."""
    async with AsyncExitStack() as stack:
        names = [f"w{i}" for i in range(count)]

        async def attach(name: str) -> None:
            client = WorkloadClient(tenant="bench", workload=name, url=url, token=up.tenant_token)

            @client.on(Eviction)
            async def handle(notice: Received[Eviction]) -> None:
                arrivals.arrived(notice.notice.notice_id)

            await stack.enter_async_context(client)
            client.start()

        for start in range(0, count, ATTACH_AT_ONCE):
            await asyncio.gather(*(attach(n) for n in names[start : start + ATTACH_AT_ONCE]))
        gc.freeze()  # the clients stand for N processes: their objects must not make this one's GC pauses
        try:
            yield names
        finally:
            gc.unfreeze()


@asynccontextmanager
async def _sse_streams(up: WiUp, count: int, arrivals: Arrivals) -> AsyncIterator[list[str]]:
    """``count`` workloads each reading the gateway's event stream."""
    names = [f"s{i}" for i in range(count)]
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    headers = {"Authorization": f"Bearer {up.tenant_token}"}
    async with httpx.AsyncClient(base_url=up.http_url, headers=headers, limits=limits, timeout=None) as http:

        async def read(name: str) -> None:
            while True:  # as an EventSource does: when the stream fails or ends, connect again
                try:
                    async with http.stream("GET", f"/v1/workloads/{name}/notices/stream") as stream:
                        if stream.status_code != 200:
                            body = (await stream.aread())[:300]
                            raise httpx.HTTPError(f"HTTP {stream.status_code}: {body!r}")
                        async for line in stream.aiter_lines():
                            if line.startswith("data:"):
                                arrivals.arrived(line.split('"notice_id":"', 1)[1].split('"', 1)[0])
                except httpx.HTTPError as exc:
                    print(f"SSE stream of {name}: {exc!r}; connecting again", file=sys.stderr)
                await asyncio.sleep(SSE_RETRY_S)

        readers = [asyncio.create_task(read(n)) for n in names]
        try:
            yield names
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


def _eviction(workload: str) -> Eviction:
    return Eviction(
        tenant="bench",
        workload=workload,
        instance=f"{workload}-0",
        reason="spot",
        not_before=utc_now() + timedelta(minutes=10),
    )


async def _warm_up(bus: Bus, names: Sequence[str], arrivals: Arrivals) -> None:
    """Sends each workload one notice and waits for all: then every client is attached and listening
    (however long attaching thousands takes), and nothing measured waits on an attach."""
    notices = [_eviction(name) for name in names]
    waiting = [
        arrivals.waiting.setdefault(n.notice_id, asyncio.get_running_loop().create_future()) for n in notices
    ]
    for start in range(0, len(notices), ATTACH_AT_ONCE):
        await asyncio.gather(*(bus.publish(n) for n in notices[start : start + ATTACH_AT_ONCE]))
    try:
        async with asyncio.timeout(WARM_UP_S):
            await asyncio.gather(*waiting)
    except TimeoutError:
        missing = [n.workload for n in notices if n.notice_id not in arrivals.at]
        raise TimeoutError(
            f"{len(missing)} of {len(names)} workloads got no notice, e.g. {missing[:5]}"
        ) from None


async def _deliver(
    bus: Bus, names: Sequence[str], arrivals: Arrivals, notices: int, gap_s: float
) -> list[float]:
    """Publishes ``notices`` evictions to random workloads, paced; the latency of each in ms."""
    pick = random.Random(7)
    sent_at: dict[str, float] = {}
    pending: list[asyncio.Future[None]] = []
    for _ in range(notices):
        notice = _eviction(pick.choice(names))
        pending.append(
            arrivals.waiting.setdefault(notice.notice_id, asyncio.get_running_loop().create_future())
        )
        sent_at[notice.notice_id] = time.perf_counter()
        await bus.publish(notice)
        await asyncio.sleep(gap_s)
    async with asyncio.timeout(60):
        await asyncio.gather(*pending)
    return [(arrivals.at[notice_id] - sent) * 1e3 for notice_id, sent in sent_at.items()]


async def _raw_round_trip(up: WiUp, samples: int) -> list[float]:
    """nats-py request/reply round trips (ms) on the same server, responder in this process."""
    nc = await nats.connect(up.nats_url, token=up.platform_token)
    try:

        async def respond(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe("bench.echo", cb=respond)
        body = b"x" * 600  # about a notice's size
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            await nc.request("bench.echo", body, timeout=5)
            times.append((time.perf_counter() - start) * 1e3)
        return times
    finally:
        await nc.close()


async def _storm(nc: NatsClient, subjects: Sequence[str]) -> tuple[float, list[bytes]]:
    """Seconds until every one of these requests, all sent at once, is answered, and the answers."""
    start = time.perf_counter()
    replies = await asyncio.gather(*(nc.request(s, b"{}", timeout=STORM_TIMEOUT_S) for s in subjects))
    return time.perf_counter() - start, [reply.data for reply in replies]


async def _attach_storm(up: WiUp, bus: Bus, names: Sequence[str]) -> Record:
    """Every workload attaches again at once (as after a restart of every client), each with its one open
    notice; against as many requests at once to an echo responder on the same server."""
    echo = await nats.connect(up.nats_url, token=up.platform_token)
    try:

        async def respond(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"x" * 600)  # about an attach reply's size

        await echo.subscribe("bench.storm", cb=respond)
        await echo.flush()
        raw, _ = await _storm(bus.nc, ["bench.storm"] * len(names))
    finally:
        await echo.close()
    attached, answers = await _storm(bus.nc, [attach_subject("bench", n) for n in names])
    if errors := [a for a in map(ATTACH_ANSWER.validate_json, answers) if isinstance(a, AttachError)]:
        raise RuntimeError(f"{len(errors)} of {len(names)} attach requests failed: {errors[0].error}")
    return Record(
        f"attach storm: {len(names):,} attach requests at once, all answered",
        round(attached, 3),
        "s",
        "as many nats-py requests at once to an echo responder",
        round(raw, 3),
    )


def _records(path: str, count: int, latencies: list[float], raw: list[float]) -> list[Record]:
    raw_p = {s: percentile(raw, s) for s in SHARES}
    records = []
    for share in SHARES:
        value = percentile(latencies, share)
        goal = met = None
        if path == "NATS" and share == 0.99 and count >= 10_000:
            goal, met = f"p99 <= {GOAL_VS_RAW}x raw", value <= GOAL_VS_RAW * raw_p[share]
        records.append(
            Record(
                f"notice latency over {path}, {count:,} workloads, p{share * 100:g}",
                round(value, 2),
                "ms",
                "nats-py request/reply round trip",
                round(raw_p[share], 2),
                goal,
                met,
            )
        )
    return records


async def measure(
    workloads: Sequence[int] = (1, 100, 1000, 10_000),
    notices: int = 1000,
    gap_ms: float = 5.0,
    http_workloads: Sequence[int] = (1, 100),
) -> list[Record]:
    """Latency percentiles per path and number of workloads, each beside the raw round trip."""
    raise_open_files()
    records: list[Record] = []
    p99_nats: dict[int, float] = {}
    async with wi_up() as up:
        bus = await Bus.connect(up.nats_url, source="/bench", token=up.platform_token)
        try:
            for path, sizes in (
                ("NATS", workloads),
                ("HTTP long poll", http_workloads),
                ("SSE", http_workloads),
            ):
                for count in sizes:
                    arrivals = Arrivals()
                    attached = (
                        _sse_streams(up, count, arrivals)
                        if path == "SSE"
                        else _sdk_clients(up, up.nats_url if path == "NATS" else up.http_url, count, arrivals)
                    )
                    async with attached as names:
                        await _warm_up(bus, names, arrivals)
                        if path == "NATS":
                            servers_mb = round(rss_mb(up.nats_pid), 1)
                            storm = await _attach_storm(up, bus, names)
                        latencies = await _deliver(bus, names, arrivals, notices, gap_ms / 1e3)
                    raw = await _raw_round_trip(up, notices)
                    records += _records(path, count, latencies, raw)
                    if path == "NATS":
                        p99_nats[count] = percentile(latencies, 0.99)
                        records.append(
                            Record(
                                f"nats-server RSS, {count:,} workloads attached over NATS", servers_mb, "MB"
                            )
                        )
                        records.append(storm)
        finally:
            await bus.close()
    if 100 in p99_nats and (largest := max(p99_nats)) > 100:
        growth = p99_nats[largest] / p99_nats[100]
        records.append(
            Record(
                f"notice p99 over NATS, {largest:,} against 100 workloads",
                round(growth, 3),
                "x",
                goal=f"<= {GOAL_FLAT}",
                met=growth <= GOAL_FLAT,
            )
        )
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="1,100,1000,10000")
    parser.add_argument("--http-workloads", default="1,100")
    parser.add_argument("--notices", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    arguments = parser.parse_args()
    print_records(
        asyncio.run(
            measure(
                [int(n) for n in arguments.workloads.split(",")],
                arguments.notices,
                arguments.gap_ms,
                [int(n) for n in arguments.http_workloads.split(",") if n],
            )
        )
    )
