"""``wi up`` as a child process of an async test, against an outside NATS."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

WI = Path(sys.executable).parent / "wi"


async def start_wi_up(
    data_dir: Path, environment: Mapping[str, str], output: list[str] | None = None
) -> asyncio.subprocess.Process:
    """Starts ``wi up`` with these WI_* variables on a free HTTP port; returns once it is up.

    Its output is read in the background (into ``output``, if given), so it never blocks on a full pipe.
    """
    process = await asyncio.create_subprocess_exec(
        str(WI),
        "up",
        "--data-dir",
        str(data_dir),
        "--http-port",
        "0",
        env={**os.environ, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen = []
    async with asyncio.timeout(30):
        while not (line := (await process.stdout.readline()).decode()).strip().startswith("HTTP"):
            seen.append(line)
            assert line, "wi up did not come up:\n" + "".join(seen)
    asyncio.get_running_loop().create_task(_drain(process, [] if output is None else output))
    return process


async def _drain(process: asyncio.subprocess.Process, output: list[str]) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        output.append(line.decode())
