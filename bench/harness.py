"""What every benchmark shares: the record it reports, a real `wi up` to measure, databases, statistics.

A record is one figure beside its raw baseline measured in the same run; ``ratio`` is WI over the
baseline, and ``met`` says whether the goal (in words, the way the issue states it) holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import nats
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from wi.bus.subjects import STREAMS
from wi.contract import Family
from wi.registry import RegistryStore

POSTGRES = os.environ.get("WI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BIN = Path(sys.executable).parent
TOKEN = re.compile(r"wi_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Record:
    """One measured figure, its baseline from the same run, and the goal it is held to."""

    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    goal: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """WI's figure over the baseline's (for times, above 1 means slower than raw)."""
        if self.baseline_value in (None, 0):
            return None
        assert self.baseline_value is not None
        return self.value / self.baseline_value

    def as_json(self) -> dict[str, object]:
        """The record as written to ``latest.json``."""
        return {**asdict(self), "ratio": None if self.ratio is None else round(self.ratio, 4)}


def percentile(samples: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def database(kind: str, scratch: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch / 'wi.db'}"
        return
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"wi_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def hints_stored(up: WiUp) -> None:
    """Waits until the registry has stored every hint on the hints stream so far (its watermark, written
    in the transaction that stores them, reaches the stream's last sequence)."""
    nc = await nats.connect(up.nats_url, token=up.platform_token)
    try:
        last = int((await nc.jetstream().stream_info(STREAMS[Family.HINT].name)).state.last_seq)
    finally:
        await nc.close()
    store = RegistryStore.open(up.database_url)
    try:
        while await asyncio.to_thread(store.watermark, Family.HINT) < last:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        store.close()


@dataclass(frozen=True)
class WiUp:
    """A `wi up` child process and how to reach it."""

    process: asyncio.subprocess.Process
    nats_url: str
    http_url: str
    database_url: str
    data_dir: Path
    tenant_token: str
    platform_token: str

    @property
    def nats_pid(self) -> int:
        """The embedded nats-server's process id."""
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid), "nats-server"], capture_output=True, text=True
        ).stdout.split()
        return int(found[0])


def _token(data_dir: Path, database_url: str, *kind: str) -> str:
    made = subprocess.run(
        [
            str(BIN / "wi"),
            "tokens",
            "create",
            *kind,
            "--data-dir",
            str(data_dir),
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = TOKEN.search(made.stdout)
    assert found, made.stdout
    return found.group()


@contextlib.asynccontextmanager
async def wi_up(
    db: str = "sqlite", services: str = "none", tenant: str = "bench", http_workers: int = 1
) -> AsyncIterator[WiUp]:
    """`wi up` on embedded NATS and a fresh database, as a process of its own (as production runs it),
    with a token for ``tenant`` and a platform token, serving HTTP from ``http_workers`` processes."""
    with tempfile.TemporaryDirectory(prefix="wi-bench-") as scratch, database(db, Path(scratch)) as url:
        data_dir = Path(scratch) / "wi"
        environment = {
            **os.environ,
            "WI_DATABASE_URL": url,
            "WI_SERVICES": services,
            "WI_LOG_LEVEL": "WARNING",
            "WI_HTTP_WORKERS": str(http_workers),
        }
        process = await asyncio.create_subprocess_exec(
            str(BIN / "wi"),
            "up",
            "--data-dir",
            str(data_dir),
            "--http-port",
            "0",
            "--nats-port",
            "0",
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        urls: dict[str, str] = {}
        seen: list[str] = []
        async with asyncio.timeout(60):
            while "HTTP" not in urls:
                line = (await process.stdout.readline()).decode()
                assert line, "wi up did not come up:\n" + "".join(seen)
                seen.append(line)
                words = line.split()
                if words and words[0] in ("NATS", "HTTP"):
                    urls[words[0]] = words[1]
        drain = asyncio.create_task(process.stdout.read())
        try:
            yield WiUp(
                process,
                urls["NATS"],
                urls["HTTP"],
                url,
                data_dir,
                _token(data_dir, url, "--tenant", tenant),
                _token(data_dir, url, "--platform"),
            )
        finally:
            process.terminate()
            await process.wait()
            await drain


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def print_records(records: Sequence[Record]) -> None:
    """One table: each figure, its baseline, the ratio and whether the goal is met."""
    width = max(len(r.name) for r in records)
    print(f"{'benchmark':<{width}}  {'WI':>22}  {'baseline':>10}  {'ratio':>7}  goal")
    for r in records:
        met = "" if r.met is None else (" (met)" if r.met else " (MISSED)")
        ratio = "" if r.ratio is None else f"{r.ratio:.3f}"
        print(
            f"{r.name:<{width}}  {_figure(r.value) + ' ' + r.unit:>22}  {_figure(r.baseline_value):>10}  "
            f"{ratio:>7}  {r.goal or ''}{met}"
        )


def raise_open_files() -> None:
    """Lets this process open as many files as it may (each attached workload is a connection)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
