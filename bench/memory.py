"""Memory: `wi up`'s resident memory and the database's size with 10,000 workloads of 5 hints each, and
what one GET of the whole tenant's hints costs.

A `wi up` (no services) of its own process gets ``--workloads`` x 5 hints (priority, evictability,
delay tolerance, availability, scaling) published by the platform; once the registry has stored them,
the figures are: `wi up`'s RSS (and its growth from the empty start), the embedded nats-server's RSS,
the database's size beside the hints' own JSON bytes (SQLite: the file and its WAL; PostgreSQL: the
database), and the growth of `wi up`'s peak RSS (VmHWM) over one ``GET /v1/platform/hints?tenant=...``.

Run: ``.venv/bin/python bench/memory.py [--workloads N] [--database sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from harness import Record, WiUp, hints_stored, print_records, rss_mb, wi_up
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from wi.bus import Bus
from wi.contract import Availability, DelayTolerance, Evictability, HintBase, Priority, Scaling

AT_ONCE = 500


def _hints(workload: str) -> list[HintBase]:
    who = {"tenant": "bench", "workload": workload}
    return [
        Priority(**who, level="low"),
        Evictability(**who, evictable=True, min_notice_s=300),
        DelayTolerance(**who, start_within_s=3600),
        Availability(**who, target=0.999),
        Scaling(**who, stateless=True),
    ]


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmHWM for process {pid}")


def _database_mb(up: WiUp) -> float:
    url = make_url(up.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    engine = create_engine(up.database_url)
    try:
        with engine.connect() as connection:
            return (
                int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
                / 1e6
            )
    finally:
        engine.dispose()


async def _register(up: WiUp, workloads: int) -> int:
    """Publishes every workload's hints, ``AT_ONCE`` in flight; their JSON bytes."""
    bus = await Bus.connect(up.nats_url, source="/bench", token=up.platform_token)
    try:
        hints = [h for w in range(workloads) for h in _hints(f"w{w:05d}")]
        for start in range(0, len(hints), AT_ONCE):
            await asyncio.gather(*(bus.publish(h) for h in hints[start : start + AT_ONCE]))
    finally:
        await bus.close()
    await hints_stored(up)
    return sum(len(h.model_dump_json()) for h in hints)


async def measure(workloads: int = 10_000, databases: Sequence[str] = ("sqlite",)) -> list[Record]:
    """The memory and size figures for each database."""
    records = []
    for db in databases:
        async with wi_up(db) as up:
            pid = up.process.pid
            empty = rss_mb(pid)
            json_mb = await _register(up, workloads) / 1e6
            await asyncio.sleep(1.0)
            loaded, peak = rss_mb(pid), _peak_mb(pid)
            size = _database_mb(up)
            headers = {"Authorization": f"Bearer {up.platform_token}"}
            async with httpx.AsyncClient(base_url=up.http_url, headers=headers, timeout=120) as http:
                started = time.perf_counter()
                answer = await http.get("/v1/platform/hints", params={"tenant": "bench"})
                answer.raise_for_status()
                took = time.perf_counter() - started
            after_get, peak_get = rss_mb(pid), _peak_mb(pid)
            where = f"{workloads:,} workloads x 5 hints, {db}"
            records += [
                Record(f"wi up RSS, {where}", round(loaded, 1), "MB", "wi up empty", round(empty, 1)),
                Record(f"nats-server RSS, {where}", round(rss_mb(up.nats_pid), 1), "MB"),
                Record(f"database size, {where}", round(size, 3), "MB", "the hints' JSON", round(json_mb, 3)),
                Record(
                    f"wi up peak RSS over one GET of all the tenant's hints, {db}",
                    round(peak_get, 1),
                    "MB",
                    "peak before the GET",
                    round(peak, 1),
                ),
                Record(
                    f"wi up RSS after that GET, {db}",
                    round(after_get, 1),
                    "MB",
                    "before it",
                    round(loaded, 1),
                ),
                Record(
                    f"GET all the tenant's hints ({len(answer.content) / 1e6:.1f} MB), {db}",
                    round(took * 1e3, 1),
                    "ms",
                ),
            ]
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    arguments = parser.parse_args()
    print_records(asyncio.run(measure(arguments.workloads, arguments.database or ["sqlite"])))
