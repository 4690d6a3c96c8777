"""How far the registry has applied each stream, and waits until it got somewhere."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar

from nats.js import JetStreamContext

from wi.bus import STREAMS
from wi.contract import Family

from .store import RegistryStore

T = TypeVar("T")


class FreshRead(Generic[T]):
    """A read shared by everyone waiting for it, never older than the question.

    Each caller gets the result of a read that started after it asked, so it sees every write made before
    it asked; callers that ask while a read runs share the next one. Any number of simultaneous callers
    cost two reads at most, where a read each would queue up behind one another.
    """

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._next: asyncio.Future[T] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def __call__(self) -> T:
        if self._reading is not None and self._reading.get_loop() is not asyncio.get_running_loop():
            self._next = self._reading = None  # a new event loop (tests run one each): begin afresh
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._reading is None or self._reading.done():
                self._reading = asyncio.create_task(self._read_for_callers())
        return await asyncio.shield(self._next)  # one caller cancelled leaves the read to the others

    async def _read_for_callers(self) -> None:
        while (waiting := self._next) is not None:
            self._next = None
            try:
                waiting.set_result(await self._read())
            except Exception as exc:
                waiting.set_exception(exc)
                waiting.exception()  # retrieved: its callers may all have gone
            except BaseException:  # cancelled: so are the callers of this read and of the next
                for future in (waiting, self._next):
                    if future is not None:
                        future.cancel()
                self._next = None
                raise


class Progress:
    """How far the registry has applied each stream (the watermarks it writes with what it applies), and
    a wait until it got somewhere.

    A registry in this process wakes waiters as it commits; commits of other processes are seen by
    polling the watermark every ``POLL_S``. Waiters share their reads of the watermark (``FreshRead``), so
    a thousand waiting requests poll the database as one.
    """

    POLL_S = 0.05

    def __init__(self, store: RegistryStore) -> None:
        self._advanced = asyncio.Event()
        self._watermarks = {
            family: FreshRead(partial(asyncio.to_thread, store.watermark, family)) for family in Family
        }

    def advanced(self) -> None:
        """Wakes the waiters: this process's registry has just committed."""
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def watermark(self, family: Family) -> int:
        """The family's watermark as stored now (read after this call began)."""
        return await self._watermarks[family]()

    async def caught_up(
        self, js: JetStreamContext, family: Family, wait_s: float, stop: asyncio.Event | None = None
    ) -> bool:
        """Waits (as ``reached``) until the family's stream is applied as far as JetStream holds it now."""
        last = (await js.stream_info(STREAMS[family].name)).state.last_seq
        return await self.reached(family, last, wait_s, stop)

    async def reached(
        self, family: Family, seq: int, wait_s: float, stop: asyncio.Event | None = None
    ) -> bool:
        """Waits up to ``wait_s`` (or until ``stop`` is set) until the family's stream is applied up to
        ``seq``; False if it is not (also when a read of the watermark outlasts the wait)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            advanced = self._advanced
            try:
                async with asyncio.timeout_at(max(deadline, loop.time() + self.POLL_S)):  # a read at least
                    if await self.watermark(family) >= seq:
                        return True
            except TimeoutError:
                return False
            left = deadline - loop.time()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), min(self.POLL_S, left))
