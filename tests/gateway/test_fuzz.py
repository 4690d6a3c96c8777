"""schemathesis against /openapi.json with a tenant token: whatever it sends, no 5xx."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.platform import Running, start_platform

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
async def quick_polls(tmp_path: Path) -> AsyncIterator[Running]:
    """A platform whose long polls return within half a second, so fuzzing them stays quick."""
    async with start_platform(tmp_path / "fuzz", http_long_poll_max_s=0.5) as platform:
        yield platform


async def test_no_input_makes_the_gateway_fail(quick_polls: Running) -> None:
    fuzz = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{quick_polls.endpoints.http_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {quick_polls.acme}",
        "--checks",
        "not_a_server_error",
        "--phases",  # the coverage phase's thousands of boundary cases belong to the property tests
        "examples,fuzzing",
        "--max-examples",
        "25",
        "--seed",
        "20261122",
        "--exclude-path",
        "/v1/workloads/{workload}/notices/stream",  # endless by design; tested on its own
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(fuzz.communicate(), 600)
    report = output.decode()
    assert fuzz.returncode == 0, report[-6000:]
    assert "Server error" not in report
