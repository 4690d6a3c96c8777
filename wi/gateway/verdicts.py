"""What the registry says as it happens: notices recorded and verdicts on responses wake long polls and
event streams, and a verdict answers a response posted over HTTP. Core NATS subscriptions, no consumer:
the notices themselves are read from SQL, these only say when to look."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterator

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from wi.bus import RECORDED_NOTICES, SUBJECT_ROOTS, Bus
from wi.contract import Family, NoticesRecorded, Verdict

log = logging.getLogger("wi.gateway.verdicts")


class VerdictWatch:
    """Follows verdicts: wakes what waits on a workload's notices, and hands a response its verdict."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._changed: weakref.WeakValueDictionary[tuple[str, str], asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._awaited: dict[tuple[str, str], asyncio.Future[Verdict]] = {}
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Starts following (every gateway process follows everything)."""
        self._subscriptions = [
            await self.bus.nc.subscribe(f"{SUBJECT_ROOTS[Family.VERDICT]}.>", cb=self._on_verdict),
            await self.bus.nc.subscribe(RECORDED_NOTICES, cb=self._on_recorded),
        ]

    async def stop(self) -> None:
        """Stops following."""
        for subscription in self._subscriptions:
            if not self.bus.nc.is_closed:
                await subscription.unsubscribe()
        self._subscriptions = []

    def change(self, tenant: str, workload: str) -> asyncio.Event:
        """An event set at the workload's next verdict; take it before reading, so nothing is missed."""
        key = (tenant, workload)
        event = self._changed.get(key)
        if event is None:
            event = self._changed[key] = asyncio.Event()
        return event

    @contextlib.contextmanager
    def verdict_on(self, tenant: str, response_id: str) -> Iterator[asyncio.Future[Verdict]]:
        """The verdict on a response, once the registry judged it; take it before publishing the response."""
        key = (tenant, response_id)
        self._awaited[key] = asyncio.get_running_loop().create_future()
        try:
            yield self._awaited[key]
        finally:
            self._awaited.pop(key, None)

    def _wake(self, tenant: str, workload: str) -> None:
        event = self._changed.pop((tenant, workload), None)
        if event is not None:
            event.set()

    async def _on_verdict(self, msg: Msg) -> None:
        try:
            verdict = Verdict.model_validate_json(msg.data)
        except ValidationError:
            log.warning("not a verdict on %s; ignored", msg.subject)
            return
        self._wake(verdict.tenant, verdict.workload)
        awaited = self._awaited.get((verdict.tenant, verdict.response_id))
        if awaited is not None and not awaited.done():
            awaited.set_result(verdict)

    async def _on_recorded(self, msg: Msg) -> None:
        try:
            recorded = NoticesRecorded.model_validate_json(msg.data)
        except ValidationError:
            log.warning("not a notices_recorded message on %s; ignored", msg.subject)
            return
        for notice in recorded.notices:
            self._wake(notice.tenant, notice.workload)


async def until(event: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    """Waits for ``event``, or ``stopping``, or ``timeout_s``, whichever comes first."""
    waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=max(timeout_s, 0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
