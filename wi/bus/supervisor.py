"""Keeps the platform's long-running loops (consumers, watchers) alive: one that fails is restarted.

A consumer loop ends only when its stop event is set. If it raises instead (a lost connection at the wrong
moment, a bug), the supervisor logs it, reports the loop as restarting, and starts it again after a
backoff that doubles from ``FIRST_BACKOFF_S`` to ``MAX_BACKOFF_S`` (and starts over once the loop has
run ``HEALTHY_AFTER_S``). So one broken loop never stops the process, and ``/readyz`` and ``/metrics``
say which one is broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("wi.bus.supervisor")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0
"""A loop that ran this long before failing is restarted after the first backoff again."""

Loop = Callable[[asyncio.Event], Awaitable[None]]
"""A long-running part: runs until the event is set, then returns."""


class LoopState(StrEnum):
    """Where a supervised loop stands."""

    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass
class LoopHealth:
    """A supervised loop's state, how often it was restarted, and why it last failed."""

    name: str
    state: LoopState = LoopState.RUNNING
    restarts: int = 0
    last_error: str | None = None


class Supervisor:
    """Runs named loops as tasks and restarts any that fails; ``health`` reports on each."""

    def __init__(self) -> None:
        self.health: dict[str, LoopHealth] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, loop: Loop, stop: asyncio.Event) -> asyncio.Task[None]:
        """Runs ``loop(stop)`` until ``stop`` is set, restarting it whenever it raises."""
        self.health[name] = LoopHealth(name)
        task = asyncio.create_task(self._keep(name, loop, stop), name=name)
        self._tasks.append(task)
        return task

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The supervising tasks, in start order."""
        return list(self._tasks)

    async def _keep(self, name: str, loop: Loop, stop: asyncio.Event) -> None:
        health = self.health[name]
        backoff = FIRST_BACKOFF_S
        clock = asyncio.get_running_loop().time
        while not stop.is_set():
            health.state = LoopState.RUNNING
            started = clock()
            try:
                await loop(stop)
                if stop.is_set():
                    break
                raise RuntimeError("it returned before it was asked to stop")
            except Exception as exc:
                if clock() - started >= HEALTHY_AFTER_S:
                    backoff = FIRST_BACKOFF_S
                health.state = LoopState.RESTARTING
                health.restarts += 1
                health.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("%s failed; restart %d in %.1f s", name, health.restarts, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        health.state = LoopState.STOPPED
