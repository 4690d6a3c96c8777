"""Drills: sends a tenant's test notice to its own workload and reports, from the registry's SQL, how it
went.

The tenant is always the caller's: the token's on HTTP, the subject's on NATS (whose permissions let a
tenant's connection publish only on its own drill subjects). The notice is marked ``drill``, so the
service runners drop it and every verdict on it. Its id is derived from (tenant, drill id): starting a
drill again sends nothing more (JetStream and the registry keep one notice per id), and a report is found
by the drill id alone. A report is read from the registry's tables, the single source of truth: the
notice and its state, when the registry recorded it (delivery: from then on every channel hands it out)
and the first response applied to it (the answer). No drill is kept in this process, so any gateway
process answers for any drill, across restarts.

Before the registry has recorded the notice: the start answers with the report of the notice in hand
(not delivered yet); a read that does not find the drill waits (up to ``CATCH_UP_WAIT_S``) until the
registry has recorded every notice stored when it asked, so it finds every drill started before it, and
fails with ``RegistryBehind`` (ask again) if the registry is further behind.

On NATS each request is answered by a task of its own (up to ``MAX_ANSWERING`` at once): a start waiting
for JetStream holds up no other request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from wi.bus import Bus, reply
from wi.bus.subjects import DRILLS_ROOT, workload_of
from wi.contract import (
    DrillError,
    DrillQuery,
    DrillReport,
    DrillRequest,
    Eviction,
    Family,
    InvalidMessage,
    Maintenance,
    MaintenanceType,
    NoticeBase,
    NoticeState,
    PowerEvent,
    PowerEventType,
    ResponseAction,
    derived_id,
    problems_from,
    utc_now,
)
from wi.contract.drills import MAX_DRILL_ERROR_CHARS
from wi.registry import NoticeTrail, Progress, RegistryStore

log = logging.getLogger("wi.gateway.drills")

DRILL_QUEUE = "wi-drills"
DRILL_REASON = "a drill the tenant asked for: nothing will happen to the instance"
DRILL_CAP_WATTS = 1000
"""The cap a power_event drill names (nothing is capped)."""
DRILL_MAINTENANCE_S = 60
"""How long a maintenance drill says the instance is affected."""
SETTLED = frozenset({NoticeState.ACKED, NoticeState.EXPIRED})
PUBLISH_TIMEOUT_S = 5.0
"""How long a drill waits for JetStream to store its notice."""
CATCH_UP_WAIT_S = 5.0
"""How long a read of a drill the registry has not recorded waits for it to catch up with the notices."""
MAX_ANSWERING = 1000
"""NATS drill requests answered at once by this process; beyond, a request is told to ask again."""


def drill_notice_id(tenant: str, drill_id: str) -> str:
    """The id of a drill's notice: fixed by the tenant and the drill id."""
    return derived_id(f"drill-{tenant}", drill_id, 0)


def drill_notice(tenant: str, workload: str, request: DrillRequest, now: datetime) -> NoticeBase:
    """The test notice a drill sends: its id fixed by the drill, its deadline ``notice_s`` from now."""
    deadline = now + timedelta(seconds=request.notice_s)
    common = {
        "tenant": tenant,
        "workload": workload,
        "notice_id": drill_notice_id(tenant, request.drill_id),
        "issued_at": now,
        "drill": True,
    }
    if request.notice_kind == "eviction":
        return Eviction(**common, instance=request.target, not_before=deadline, reason=DRILL_REASON)
    if request.notice_kind == "maintenance":
        return Maintenance(
            **common,
            instance=request.target,
            type=MaintenanceType.REBOOT,
            not_before=deadline,
            expected_duration_s=DRILL_MAINTENANCE_S,
            deferrable_until=deadline + timedelta(seconds=request.notice_s),
            responses=[ResponseAction.ACK, ResponseAction.DEFER],
        )
    return PowerEvent(
        **common,
        power_domain=request.target,
        type=PowerEventType.POWER_CAP,
        cap_watts=DRILL_CAP_WATTS,
        starts_at=deadline,
    )


@dataclass(frozen=True)
class Drill:
    """One drill as the registry has it so far (or, before it recorded the notice, as just sent)."""

    notice: NoticeBase
    drill_id: str
    delivered_at: datetime | None = None
    answer: ResponseAction | None = None
    answered_at: datetime | None = None
    """When the bus received the answer: the time the registry judged it as of."""
    state: NoticeState = NoticeState.PENDING
    deferred_until: datetime | None = None

    @classmethod
    def from_trail(cls, drill_id: str, trail: NoticeTrail) -> Drill:
        """The drill whose notice the registry recorded as ``trail``."""
        return cls(
            trail.notice,
            drill_id,
            delivered_at=trail.recorded_at,
            answer=trail.answer,
            answered_at=trail.answered_at,
            state=trail.status.state,
            deferred_until=trail.status.deferred_until,
        )

    def report(self, now: datetime) -> DrillReport:
        """The report as of ``now``."""
        notice, requested = self.notice, self.notice.issued_at
        deadline = notice.deadline
        assert deadline is not None
        state = self.state
        if state in (NoticeState.PENDING, NoticeState.DEFERRED) and now >= (self.deferred_until or deadline):
            state = NoticeState.EXPIRED
        answered_after = before_deadline = None
        if self.answered_at is not None:
            # 0 when the answer reached the bus before the registry had recorded the notice
            answered_after = max(0.0, _seconds(self.answered_at - (self.delivered_at or requested)))
            before_deadline = _seconds(deadline - self.answered_at)
        return DrillReport(
            drill_id=self.drill_id,
            tenant=notice.tenant,
            workload=notice.workload,
            notice_id=notice.notice_id,
            notice_kind=notice.kind,
            requested_at=requested,
            deadline=deadline,
            delivered_after_s=None if self.delivered_at is None else _seconds(self.delivered_at - requested),
            answer=self.answer,
            answered_after_s=answered_after,
            before_deadline_s=before_deadline,
            state=state,
            deferred_until=self.deferred_until,
            done=self.answer is not None or state in SETTLED,
        )


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


class DrillConflict(ValueError):
    """The drill id is taken by a drill of another of the tenant's workloads."""


class RegistryBehind(Exception):
    """The registry has not recorded every notice stored so far within ``CATCH_UP_WAIT_S``: ask again."""


class DrillDesk:
    """Starts drills and reads their reports from the registry, for HTTP routes and NATS requests alike.

    Keeps no drill: the registry's tables are the reports.
    """

    def __init__(
        self, bus: Bus, store: RegistryStore, progress: Progress, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.bus = bus
        self.store = store
        self.progress = progress
        self.clock = clock
        self._subscriptions: list[Subscription] = []
        self._answering: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Starts answering drill requests on NATS."""
        self._subscriptions = [
            await self.bus.nc.subscribe(f"{DRILLS_ROOT}.start.*.*", queue=DRILL_QUEUE, cb=self._on_start),
            await self.bus.nc.subscribe(f"{DRILLS_ROOT}.report.*.*", queue=DRILL_QUEUE, cb=self._on_query),
        ]

    async def stop(self) -> None:
        """Stops answering; answers the requests already taken."""
        for subscription in self._subscriptions:
            if not self.bus.nc.is_closed:
                await subscription.unsubscribe()
        self._subscriptions = []
        await asyncio.gather(*self._answering)

    async def begin(
        self, tenant: str, workload: str, request: DrillRequest, timeout_s: float = PUBLISH_TIMEOUT_S
    ) -> DrillReport:
        """Sends the drill's notice (once per drill id) and returns its report so far.

        Raises DrillConflict when the drill id is another workload's drill, RegistryBehind when the drill
        was started before but its notice is not recorded in time, and what ``Bus.publish`` raises when
        JetStream does not store the notice within ``timeout_s``.
        """
        trail = await self._trail(tenant, request.drill_id)
        if trail is None:
            notice = drill_notice(tenant, workload, request, self.clock())
            published = await self.bus.publish(notice, source=f"/drills/{tenant}", timeout_s=timeout_s)
            if not published.duplicate:
                return Drill(notice, request.drill_id).report(self.clock())
            # Started before and not recorded yet: the notice stored then (at published.seq) is the drill's.
            if await self.progress.reached(Family.NOTICE, published.seq, CATCH_UP_WAIT_S):
                trail = await self._trail(tenant, request.drill_id)
            if trail is None:
                raise RegistryBehind("the registry has not recorded the drill's notice yet; ask again")
        if trail.notice.workload != workload:
            raise DrillConflict(f"drill {request.drill_id} is a drill of workload {trail.notice.workload}")
        return Drill.from_trail(request.drill_id, trail).report(self.clock())

    async def report(self, tenant: str, workload: str, drill_id: str) -> DrillReport | None:
        """The report of a drill of the tenant's workload; None if there is no such drill.

        Raises RegistryBehind when the drill is not found and the registry has not recorded every notice
        stored so far within ``CATCH_UP_WAIT_S``.
        """
        trail = await self._trail(tenant, drill_id)
        if trail is None:
            if not await self._notices_caught_up():
                raise RegistryBehind("the registry is catching up with the notices; ask again shortly")
            trail = await self._trail(tenant, drill_id)
        if trail is None or trail.notice.workload != workload:
            return None
        return Drill.from_trail(drill_id, trail).report(self.clock())

    async def _trail(self, tenant: str, drill_id: str) -> NoticeTrail | None:
        """The drill's notice as the registry recorded it, if it did."""
        trail = await asyncio.to_thread(self.store.notice_trail, drill_notice_id(tenant, drill_id))
        if trail is None or trail.notice.tenant != tenant or trail.notice.drill is not True:
            return None
        return trail

    async def _notices_caught_up(self) -> bool:
        """Waits until the registry has recorded every notice stored now; False if it does not in time."""
        try:
            return await self.progress.caught_up(self.bus.js, Family.NOTICE, CATCH_UP_WAIT_S)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("could not read how far the notices stream goes: %s", exc)
            return False

    async def _on_start(self, msg: Msg) -> None:
        async def answer(tenant: str, workload: str) -> BaseModel:
            request = DrillRequest.model_validate_json(msg.data or b"{}", strict=True)
            return await self.begin(tenant, workload, request)

        await self._answer_apart(msg, answer)

    async def _on_query(self, msg: Msg) -> None:
        async def answer(tenant: str, workload: str) -> BaseModel:
            query = DrillQuery.model_validate_json(msg.data, strict=True)
            found = await self.report(tenant, workload, query.drill_id)
            return found or DrillError(error=f"no drill {query.drill_id} of {workload} is known")

        await self._answer_apart(msg, answer)

    async def _answer_apart(self, msg: Msg, answer: Callable[[str, str], Awaitable[BaseModel]]) -> None:
        """Answers in a task of its own: nats-py runs a subscription's callbacks one after another."""
        if len(self._answering) >= MAX_ANSWERING:
            busy = DrillError(error="too many drill requests at once; ask again")
            await reply(msg, busy.model_dump_json().encode())
            return
        answering = asyncio.create_task(self._answer(msg, answer))
        self._answering.add(answering)
        answering.add_done_callback(self._answering.discard)

    async def _answer(self, msg: Msg, answer: Callable[[str, str], Awaitable[BaseModel]]) -> None:
        """Replies with what ``answer`` makes of the subject's tenant and workload, or a DrillError."""
        answered: BaseModel
        try:
            answered = await answer(*workload_of(msg.subject))
        except (InvalidMessage, ValidationError) as exc:
            found = exc.problems if isinstance(exc, InvalidMessage) else problems_from(exc)
            error = "; ".join(map(str, found))
            answered = DrillError(error=error[:MAX_DRILL_ERROR_CHARS])
        except (DrillConflict, RegistryBehind) as exc:
            answered = DrillError(error=str(exc))
        except Exception as exc:  # the bus or the database did not answer: the caller may ask again
            log.warning("drill on %s failed: %s", msg.subject, exc)
            why = f"the drill could not be served now ({type(exc).__name__}); ask again"
            answered = DrillError(error=why)
        await reply(msg, answered.model_dump_json(exclude_none=True).encode())
