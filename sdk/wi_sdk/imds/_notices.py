"""The notices one instance is told, as the cloud formats read them: what is scheduled, what started, and
a signal for readers that wait for a change."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from wi.contract import Eviction, Maintenance, ResponseAction, utc_now

from .._client import Received
from .._errors import ConflictError


def maintenance_ends_at(notice: Maintenance) -> datetime:
    """When a maintenance is expected to be over: its start plus its expected duration."""
    return notice.not_before + timedelta(seconds=notice.expected_duration_s)


class InstanceNotices:
    """The eviction and maintenance notices of one instance, each with the handle that answers it.

    An eviction is kept for as long as the agent runs (the instance is going away); a maintenance until
    it is expected to be over. A notice has started once its deadline passed or the workload acked it here.
    ``incarnation`` counts the changes readers can see, and ``wait_for_change`` wakes on each of them,
    including those that come with time (a deadline passing, a maintenance ending).
    """

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.incarnation = 1
        self._evictions: dict[str, Received[Eviction]] = {}
        self._maintenances: dict[str, Received[Maintenance]] = {}
        self._acked: set[str] = set()
        self._changed = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self.closed = False

    def add_eviction(self, received: Received[Eviction]) -> None:
        """Holds an eviction of this instance."""
        self._evictions[received.notice.notice_id] = received
        self._changed_now(at=(received.notice.not_before,))

    def add_maintenance(self, received: Received[Maintenance]) -> None:
        """Holds a maintenance of this instance."""
        notice = received.notice
        self._maintenances[notice.notice_id] = received
        self._changed_now(at=(notice.not_before, maintenance_ends_at(notice)))

    def eviction(self) -> Eviction | None:
        """The eviction that comes first, if any."""
        return min((r.notice for r in self._evictions.values()), key=lambda n: n.not_before, default=None)

    def evictions(self) -> list[Eviction]:
        """Every eviction held, the first first."""
        return sorted((r.notice for r in self._evictions.values()), key=lambda n: n.not_before)

    def maintenances(self, now: datetime | None = None) -> list[Maintenance]:
        """The maintenances not yet over, the first first."""
        now = now or utc_now()
        current = (r.notice for r in self._maintenances.values() if maintenance_ends_at(r.notice) > now)
        return sorted(current, key=lambda n: n.not_before)

    def started(self, notice: Eviction | Maintenance, now: datetime | None = None) -> bool:
        """Whether the platform may be acting on a notice: it was acked here, or its deadline passed."""
        return notice.notice_id in self._acked or notice.not_before <= (now or utc_now())

    async def ack(self, notice_id: str, reason: str) -> None:
        """Answers a held notice with WI's ack, once (approving it again changes nothing). Raises KeyError
        for a notice not held, and the SDK's errors (``ConflictError`` when the notice allows no ack or its
        deadline passed, ``TransportError``) when WI cannot take it."""
        received = self._evictions.get(notice_id) or self._maintenances[notice_id]
        if notice_id in self._acked:
            return
        if ResponseAction.ACK not in received.notice.responses:
            raise ConflictError(
                f"notice {notice_id} allows no ack, only {', '.join(received.notice.responses)}"
            )
        await received.ack(reason)
        self._acked.add(notice_id)
        self._changed_now()

    async def wait_for_change(self, timeout_s: float | None) -> None:
        """Returns at the next change, after ``timeout_s`` seconds, or once the agent stops."""
        if not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)

    def close(self) -> None:
        """Stops the timers and releases every waiting reader."""
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._changed.set()

    def _changed_now(self, at: tuple[datetime, ...] = ()) -> None:
        """Counts a change and wakes the readers waiting for one; also does so later at each of ``at``."""
        self.incarnation += 1
        self._changed.set()
        self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        now = utc_now()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        for moment in at:
            if moment > now:
                delay = (moment - now).total_seconds()
                self._timers.append(loop.call_later(delay, self._changed_now))
