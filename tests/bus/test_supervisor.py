"""The supervisor restarts a loop that fails and reports it; a loop that ends early counts as failed."""

from __future__ import annotations

import asyncio

import pytest

from wi.bus import LoopState, Supervisor
from wi.bus import supervisor as supervisor_module


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "FIRST_BACKOFF_S", 0.01)


async def test_a_failing_loop_is_restarted_until_it_runs_and_stops_when_asked() -> None:
    supervisor = Supervisor()
    stop = asyncio.Event()
    runs = 0
    running = asyncio.Event()

    async def flaky(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionError(f"lost the server (run {runs})")
        running.set()
        await stop.wait()

    task = supervisor.start("flaky", flaky, stop)
    await asyncio.wait_for(running.wait(), 5)
    health = supervisor.health["flaky"]
    assert (health.state, health.restarts) == (LoopState.RUNNING, 2)
    assert health.last_error == "ConnectionError: lost the server (run 2)"
    stop.set()
    await asyncio.wait_for(task, 5)
    assert health.state is LoopState.STOPPED


async def test_a_loop_that_returns_before_its_stop_is_restarted() -> None:
    supervisor = Supervisor()
    stop = asyncio.Event()
    runs = 0

    async def quits(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stop.set()

    await asyncio.wait_for(supervisor.start("quits", quits, stop), 5)
    assert supervisor.health["quits"].restarts == 2
    assert "returned before it was asked to stop" in (supervisor.health["quits"].last_error or "")
