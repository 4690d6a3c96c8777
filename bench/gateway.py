"""The gateway under load from wrk: POST a hint, at 16 and 64 connections, against a bare FastAPI route.

WI: `wi up` (no services) in a process of its own, serving HTTP from one process, then from one gateway
worker per core (``WI_HTTP_WORKERS``); wrk POSTs one evictability hint per request to one workload with
a tenant token, for ``--seconds`` per connection count. Each 202 means the hint was checked and stored
by JetStream. Raw: a FastAPI app with one POST route that returns 202 and a small JSON body without
reading anything, served as `wi up` serves (uvicorn on uvloop with httptools, TCP_NODELAY, no access
log), by as many processes, each on a socket of its own on one port. Goal: WI at least 70 % of raw
requests per second. wrk comes from Debian's packages (``tools/wrk/install``).

Run: ``.venv/bin/python bench/gateway.py [--seconds S] [--workers 1,2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import Record, print_records, wi_up

GOAL = 0.7
CONNECTIONS = (16, 64)
WORKERS = tuple(sorted({1, os.cpu_count() or 1}))
"""HTTP processes on each side: one, and one per core as production runs uvicorn."""
HINT = {"kind": "evictability", "evictable": True, "min_notice_s": 120}
TOOLS = Path(__file__).resolve().parents[1] / "tools"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        subprocess.run([str(TOOLS / "wrk" / "install")], check=True)
        found = shutil.which("wrk")
    assert found is not None, "wrk is not installed (tools/wrk/install)"
    return found


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reports."""

    ok: int
    """Answers with a 2xx status."""
    errors: int
    seconds: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds


def load(url: str, token: str, connections: int, seconds: float) -> WrkRun:
    """wrk POSTing a hint to ``url`` with ``connections`` connections for ``seconds``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(HINT))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
    done = subprocess.run(
        [
            _wrk(),
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(script.name).unlink()
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert total is not None and p99 is not None, out
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    return WrkRun(
        int(total.group(1)) - errors,
        errors,
        float(total.group(2)) * _UNITS[total.group(3)] / 1e3,
        float(p99.group(1)) * _UNITS[p99.group(2)],
    )


BARE_APP = """
import asyncio, os, sys
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from wi.server import run_event_loop
from wi.server.children import bound_to_this_process
from wi.server.http import HttpServer, bind_http_group, http_url

app = FastAPI()
app.state.stopping = asyncio.Event()

@app.post("/v1/workloads/{workload}/hints", status_code=202)
async def hints(workload: str, request: Request) -> JSONResponse:
    return JSONResponse({"ids": ["x"], "seq": 1}, status_code=202)

async def main(listening) -> None:
    await HttpServer(app, listening).start()
    await asyncio.Event().wait()

group = bind_http_group("127.0.0.1", 0, int(sys.argv[1]))
print("HTTP", http_url(group[0]), flush=True)
bind = bound_to_this_process()
mine = group[0]
for listening in group[1:]:
    if os.fork() == 0:
        if bind is not None:
            bind()
        mine = listening
        break
run_event_loop(main(mine))
"""


async def measure(seconds: float = 5.0, workers: tuple[int, ...] = WORKERS) -> list[Record]:
    """POST hints requests/s and p99 at each connection count, WI against the bare route, with each
    number of HTTP processes."""
    records = []
    for count in workers:
        records += await _measure_workers(seconds, count)
    return records


async def _measure_workers(seconds: float, workers: int) -> list[Record]:
    bare = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BARE_APP, str(workers), stdout=asyncio.subprocess.PIPE
    )
    assert bare.stdout is not None
    bare_url = (await bare.stdout.readline()).decode().split()[1]
    records = []
    try:
        async with wi_up(http_workers=workers) as up:
            for connections in CONNECTIONS:
                wi_url = f"{up.http_url}/v1/workloads/bench-gateway/hints"
                raw = await asyncio.to_thread(
                    load, f"{bare_url}/v1/workloads/w/hints", up.tenant_token, connections, seconds
                )
                wi = await asyncio.to_thread(load, wi_url, up.tenant_token, connections, seconds)
                assert wi.errors == 0, f"the gateway answered {wi.errors} requests with an error"
                name = f"gateway POST hint, {connections} connections, {workers} HTTP worker(s)"
                baseline = "bare FastAPI route, same server"
                records += [
                    Record(
                        name,
                        round(wi.rate, 1),
                        "req/s",
                        baseline,
                        round(raw.rate, 1),
                        f"ratio >= {GOAL}",
                        wi.rate / raw.rate >= GOAL,
                    ),
                    Record(f"{name}, p99", round(wi.p99_ms, 2), "ms", baseline, round(raw.p99_ms, 2)),
                ]
    finally:
        bare.terminate()
        await bare.wait()
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--workers",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=WORKERS,
        help="HTTP processes on each side, comma-separated",
    )
    args = parser.parse_args()
    print_records(asyncio.run(measure(args.seconds, args.workers)))
