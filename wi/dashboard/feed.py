"""What the dashboard shows, followed on the bus and pushed to each open page.

Core NATS subscriptions, no consumer: decisions as the service runners record them
(``DecisionsRecorded``), notices as the registry records them (``NoticesRecorded``), verdicts as it
judges responses, power caps as operators or telemetry publish them, and whose hints the registry changed
(``HintsRecorded``, one message a batch: following every hint cost a gateway worker a third of its CPU).
What runs where is read from the decision log once at start and then on each recorded batch of decisions
the bus tells of, never on a timer. Every update goes to every open page as it happens; a page that
opens gets the ``snapshot`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from wi.bus import RECORDED_DECISIONS, RECORDED_HINTS, RECORDED_NOTICES, SUBJECT_ROOTS, Bus
from wi.contract import (
    DecisionsRecorded,
    Family,
    HintsRecorded,
    NoticesRecorded,
    Pool,
    PowerCap,
    Verdict,
    utc_now,
)
from wi.engine import DecisionLog, Fleet, Inventory, ServerUse
from wi.registry import RegistryStore

log = logging.getLogger("wi.dashboard")

Update = dict[str, Any]
"""One update for the pages: JSON with a ``type`` (decision, notice, verdict, power, fleet, workload)."""


class DashboardFeed:
    """Follows the bus for the dashboard and hands each update to every page listening."""

    RECENT = 200
    """How many timeline updates (decisions, notices, verdicts) a page that opens is given."""
    SAMPLES = 120
    """How many draw and cap readings are kept a power domain."""
    PAGE_BACKLOG = 1000
    """How many updates may wait for one page; a page further behind is dropped (it reconnects)."""

    def __init__(
        self, bus: Bus, fleet: Fleet, store: RegistryStore, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.bus = bus
        self.fleet = fleet
        self.store = store
        self.decisions = DecisionLog(store.engine)
        self.clock = clock
        self.inventory = Inventory()
        self._seen = 0
        """The last decision of the log folded into the inventory."""
        self._recent: deque[Update] = deque(maxlen=self.RECENT)
        self._power: dict[str, deque[Update]] = {
            d.id: deque([self._reading(d.id, None, d.budget_watts)], maxlen=self.SAMPLES)
            for d in fleet.power_domains
        }
        self._workloads: set[tuple[str, str]] = set()
        self._pages: set[asyncio.Queue[Update | None]] = set()
        self._subscriptions: list[Subscription] = []
        self._catching_up = asyncio.Lock()

    async def start(self) -> None:
        """Subscribes first, then reads what runs where and which workloads exist, so nothing is missed."""
        followed = (
            (RECORDED_DECISIONS, self._on_decisions),
            (RECORDED_NOTICES, self._on_notices),
            (f"{SUBJECT_ROOTS[Family.VERDICT]}.>", self._on_verdict),
            (f"{SUBJECT_ROOTS[Family.EVENT]}.power_cap", self._on_power_cap),
            (RECORDED_HINTS, self._on_hints),
        )
        for subject, handler in followed:
            self._subscriptions.append(await self.bus.nc.subscribe(subject, cb=handler))
        self._workloads.update(await asyncio.to_thread(self.store.workloads))
        await self._catch_up()

    async def stop(self) -> None:
        """Stops following and ends every page's stream."""
        for subscription in self._subscriptions:
            if not self.bus.nc.is_closed:
                await subscription.unsubscribe()
        self._subscriptions = []
        for page in self._pages:
            page.put_nowait(None)

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Queue[Update | None]]:
        """A queue of the updates from now on, for one page; None ends it."""
        page: asyncio.Queue[Update | None] = asyncio.Queue(self.PAGE_BACKLOG)
        self._pages.add(page)
        try:
            yield page
        finally:
            self._pages.discard(page)

    def snapshot(self) -> dict[str, Any]:
        """Everything a page shows, as of now."""
        return {
            "fleet": self._fleet(),
            "power": [
                {"domain": domain, "budget_watts": self._budget(domain), "readings": list(readings)}
                for domain, readings in self._power.items()
            ],
            "timeline": list(self._recent),
            "workloads": [{"tenant": t, "workload": w} for t, w in sorted(self._workloads)],
        }

    def _tell(self, update: Update, *, timeline: bool = True) -> None:
        if timeline:
            self._recent.append(update)
        for page in list(self._pages):
            try:
                page.put_nowait(update)
            except asyncio.QueueFull:
                log.warning("a dashboard page fell %d updates behind; dropped", self.PAGE_BACKLOG)
                self._pages.discard(page)
                with contextlib.suppress(asyncio.QueueEmpty):
                    page.get_nowait()
                page.put_nowait(None)

    def _saw_workload(self, tenant: str | None, workload: str | None) -> None:
        if tenant is None or workload is None:
            return
        self._workloads.add((tenant, workload))
        self._tell({"type": "workload", "tenant": tenant, "workload": workload}, timeline=False)

    def _fleet(self) -> list[dict[str, Any]]:
        """Per region and pool: servers, cores in all, cores booked, instances."""
        self.inventory.advance(self.clock())
        rows: dict[tuple[str, Pool], dict[str, Any]] = {}
        for server in self.fleet.servers:
            row = rows.setdefault(
                (server.region, server.pool),
                {"region": server.region, "pool": server.pool.value, "servers": 0, "cores": 0, "booked": 0},
            )
            row["servers"] += 1
            row["cores"] += server.cores
            row["booked"] += self.inventory.use.get(server.id, ServerUse()).cores
        instances: dict[tuple[str, Pool], int] = {}
        for instance in self.inventory:
            key = (self.fleet.server(instance.server).region, instance.pool)
            instances[key] = instances.get(key, 0) + 1
        return [
            {**row, "free": row["cores"] - row["booked"], "instances": instances.get(key, 0)}
            for key, row in sorted(rows.items())
        ]

    def _budget(self, domain: str) -> int | None:
        return next((d.budget_watts for d in self.fleet.power_domains if d.id == domain), None)

    def _reading(self, domain: str, draw: int | None, cap: int | None) -> Update:
        return {
            "type": "power",
            "domain": domain,
            "at": self.clock().isoformat(),
            "draw_watts": draw,
            "cap_watts": cap,
        }

    async def _catch_up(self) -> None:
        """Folds the decisions recorded since the last look into the inventory, then tells the fleet."""
        async with self._catching_up:
            fresh = await asyncio.to_thread(self.decisions.all_for, None, True, self._seen)
            for decision in fresh:
                self.inventory.apply(decision.changes)
                self._seen = max(self._seen, decision.seq or 0)
        if self._pages:  # a page that opens later reads the fleet in its snapshot
            self._tell({"type": "fleet", "fleet": self._fleet()}, timeline=False)

    async def _on_decisions(self, msg: Msg) -> None:
        try:
            told = DecisionsRecorded.model_validate_json(msg.data)
        except ValidationError:
            log.warning("not a decisions_recorded message on %s; ignored", msg.subject)
            return
        for decision in told.decisions:
            self._tell({"type": "decision", **decision.model_dump(mode="json")})
            self._saw_workload(decision.tenant, decision.workload)
        await self._catch_up()

    async def _on_notices(self, msg: Msg) -> None:
        try:
            recorded = NoticesRecorded.model_validate_json(msg.data)
        except ValidationError:
            return
        for notice in recorded.notices:
            self._tell({"type": "notice", "state": "pending", **notice.model_dump(mode="json")})
            self._saw_workload(notice.tenant, notice.workload)

    async def _on_verdict(self, msg: Msg) -> None:
        try:
            verdict = Verdict.model_validate_json(msg.data)
        except ValidationError:
            return
        if verdict.state is None:
            return
        fields = ("tenant", "workload", "notice_id", "notice_kind", "state", "response", "refused", "drill")
        self._tell({"type": "verdict", **verdict.model_dump(mode="json", include=set(fields))})
        self._saw_workload(verdict.tenant, verdict.workload)

    async def _on_power_cap(self, msg: Msg) -> None:
        try:
            cap = PowerCap.model_validate_json(msg.data)
        except ValidationError:
            return
        budget = self._budget(cap.power_domain)
        reading = self._reading(cap.power_domain, cap.draw_watts, budget if cap.ended else cap.cap_watts)
        self._power.setdefault(cap.power_domain, deque(maxlen=self.SAMPLES)).append(reading)
        self._tell(reading, timeline=False)

    async def _on_hints(self, msg: Msg) -> None:
        """The registry changed these workloads' hints."""
        try:
            recorded = HintsRecorded.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning("ignored a hints-recorded message that is not one: %d error(s)", exc.error_count())
            return
        for hinted in recorded.workloads:
            self._saw_workload(hinted.tenant, hinted.workload)
