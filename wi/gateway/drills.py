"""Drills: sends a tenant's test notice to its own workload and follows it on the bus into a report.

The tenant is always the caller's: the token's on HTTP, the subject's on NATS (whose permissions let a
tenant's connection publish only on its own drill subjects). The notice is marked ``drill``, so the
service runners drop it and every verdict on it. The report is kept in this process, for the last
``KEPT`` drills: delivery is when the registry says it recorded the notice (``NoticesRecorded``), the
answer is the registry's first verdict that applied a response.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from wi.bus import RECORDED_NOTICES, SUBJECT_ROOTS, Bus
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
    NoticesRecorded,
    NoticeState,
    PowerEvent,
    PowerEventType,
    ResponseAction,
    Verdict,
    derived_id,
    problems_from,
    utc_now,
)
from wi.contract.drills import MAX_DRILL_ERROR_CHARS

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


def drill_notice(tenant: str, workload: str, request: DrillRequest, now: datetime) -> NoticeBase:
    """The test notice a drill sends: its id fixed by the drill, its deadline ``notice_s`` from now."""
    deadline = now + timedelta(seconds=request.notice_s)
    common = {
        "tenant": tenant,
        "workload": workload,
        "notice_id": derived_id(f"drill-{tenant}", request.drill_id, 0),
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


@dataclass
class Drill:
    """One drill as followed so far."""

    notice: NoticeBase
    drill_id: str
    delivered_at: datetime | None = None
    answer: ResponseAction | None = None
    answered_at: datetime | None = None
    state: NoticeState = NoticeState.PENDING
    deferred_until: datetime | None = None

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
            answered_after = _seconds(self.answered_at - (self.delivered_at or requested))
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


class DrillDesk:
    """Starts drills and keeps their reports, for HTTP routes and NATS requests alike."""

    KEPT = 10_000
    """How many drills' reports are kept; the oldest go first."""

    def __init__(self, bus: Bus, clock: Callable[[], datetime] = utc_now) -> None:
        self.bus = bus
        self.clock = clock
        self._drills: OrderedDict[tuple[str, str], Drill] = OrderedDict()
        """(tenant, drill_id) to the drill."""
        self._by_notice: dict[str, Drill] = {}
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Starts answering drill requests on NATS and following the notices and verdicts of drills."""
        self._subscriptions = [
            await self.bus.nc.subscribe(f"{DRILLS_ROOT}.start.*.*", queue=DRILL_QUEUE, cb=self._on_start),
            await self.bus.nc.subscribe(f"{DRILLS_ROOT}.report.*.*", queue=DRILL_QUEUE, cb=self._on_query),
            await self.bus.nc.subscribe(RECORDED_NOTICES, cb=self._on_recorded),
            await self.bus.nc.subscribe(f"{SUBJECT_ROOTS[Family.VERDICT]}.>", cb=self._on_verdict),
        ]

    async def stop(self) -> None:
        """Stops answering and following."""
        for subscription in self._subscriptions:
            if not self.bus.nc.is_closed:
                await subscription.unsubscribe()
        self._subscriptions = []

    async def begin(
        self, tenant: str, workload: str, request: DrillRequest, timeout_s: float = PUBLISH_TIMEOUT_S
    ) -> DrillReport:
        """Sends the drill's notice (once per drill id) and returns its report so far.

        Raises what ``Bus.publish`` raises when JetStream does not store the notice within ``timeout_s``.
        """
        key = (tenant, request.drill_id)
        drill = self._drills.get(key)
        if drill is None:
            drill = Drill(drill_notice(tenant, workload, request, self.clock()), request.drill_id)
            self._keep(key, drill)  # before publishing: the registry may record it before the ack is back
            try:
                await self.bus.publish(drill.notice, source=f"/drills/{tenant}", timeout_s=timeout_s)
            except BaseException:
                self._forget(key)
                raise
        return drill.report(self.clock())

    def report(self, tenant: str, workload: str, drill_id: str) -> DrillReport | None:
        """The report of a drill of the tenant's workload, if this process follows it."""
        drill = self._drills.get((tenant, drill_id))
        if drill is None or drill.notice.workload != workload:
            return None
        return drill.report(self.clock())

    def _keep(self, key: tuple[str, str], drill: Drill) -> None:
        self._drills[key] = drill
        self._by_notice[drill.notice.notice_id] = drill
        while len(self._drills) > self.KEPT:
            self._forget(next(iter(self._drills)))

    def _forget(self, key: tuple[str, str]) -> None:
        gone = self._drills.pop(key)
        self._by_notice.pop(gone.notice.notice_id, None)

    async def _on_start(self, msg: Msg) -> None:
        async def answer(tenant: str, workload: str) -> BaseModel:
            request = DrillRequest.model_validate_json(msg.data or b"{}", strict=True)
            return await self.begin(tenant, workload, request)

        await self._answer(msg, answer)

    async def _on_query(self, msg: Msg) -> None:
        async def answer(tenant: str, workload: str) -> BaseModel:
            query = DrillQuery.model_validate_json(msg.data, strict=True)
            found = self.report(tenant, workload, query.drill_id)
            return found or DrillError(error=f"no drill {query.drill_id} of {workload} is known here")

        await self._answer(msg, answer)

    async def _answer(self, msg: Msg, answer: Callable[[str, str], Awaitable[BaseModel]]) -> None:
        """Replies with what ``answer`` makes of the subject's tenant and workload, or a DrillError."""
        reply: BaseModel
        try:
            reply = await answer(*workload_of(msg.subject))
        except (InvalidMessage, ValidationError) as exc:
            found = exc.problems if isinstance(exc, InvalidMessage) else problems_from(exc)
            error = "; ".join(str(p) for p in found)
            reply = DrillError(error=error[:MAX_DRILL_ERROR_CHARS])
        except Exception as exc:  # the bus did not store the notice: the caller may ask again
            log.warning("drill on %s failed: %s", msg.subject, exc)
            reply = DrillError(error=f"the notice could not be sent now ({type(exc).__name__}); ask again")
        await msg.respond(reply.model_dump_json(exclude_none=True).encode())

    async def _on_recorded(self, msg: Msg) -> None:
        try:
            recorded = NoticesRecorded.model_validate_json(msg.data)
        except ValidationError:
            return
        now = self.clock()
        for notice in recorded.notices:
            drill = self._by_notice.get(notice.notice_id)
            if drill is not None and drill.delivered_at is None:
                drill.delivered_at = now

    async def _on_verdict(self, msg: Msg) -> None:
        try:
            verdict = Verdict.model_validate_json(msg.data)
        except ValidationError:
            return
        drill = self._by_notice.get(verdict.notice_id)
        if drill is None or verdict.refused is not None or verdict.state is None:
            return
        if drill.answer is None:
            drill.answer, drill.answered_at = verdict.response, self.clock()
        drill.state, drill.deferred_until = verdict.state, verdict.deferred_until
