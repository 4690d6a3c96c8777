"""The shell that runs a platform service on the bus, batch by batch.

It takes what a consumer fetched as a batch: it waits once for the registry, reads the hints of every
workload the batch concerns in one query, and, in one turn at the decision log, catches up with what
other processes decided, decides the inputs in stream order (each seeing the state the one before
left) and records the decisions in one transaction. Then it publishes their notices and hints, several
in flight, tells the decisions on core NATS for live views, and the consumer acknowledges the batch.
Drills (notices marked ``drill`` and verdicts on them) never reach a service.

Decisions are keyed by their input. An input that comes again (a redelivery after a crash, whether
before or after the commit) is not decided again: its recorded notices are published again, with ids
the decision fixed, so JetStream and the registry store them once. A restarted process neither repeats
an action nor loses one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial

import nats.errors
from pydantic import ValidationError

from wi.bus import RECORDED_DECISIONS, Batch, Bus, ConsumerSpec, Interrupted, Loop
from wi.contract import DecisionsRecorded, Family, HintBase, Message, NoticeBase, is_drill, utc_now
from wi.contract.decisions import MAX_DECISIONS_A_MESSAGE
from wi.registry import HINTS_CONSUMER, Progress, RegistryStore

from .decisions import Decision, recorded
from .inventory import Inventory
from .log import DecisionLog
from .plugin import PlatformService, View

log = logging.getLogger("wi.engine.runner")

SERVICE_BATCH = 256
"""The most inputs a service decides in one turn at the log (one transaction)."""
HINTS_CATCH_UP_WAIT_S = 10.0
"""The longest a batch waits for the registry to apply the hints published before it."""

PUBLISHING_AT_ONCE = 64
"""How many of a batch's notices and hints are published at once."""


class ServiceRunner:
    """Runs one service: consumes in batches, decides in the log's turn, records, publishes."""

    def __init__(
        self,
        service: PlatformService,
        bus: Bus,
        registry: RegistryStore,
        log: DecisionLog,
        clock: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
    ) -> None:
        self.service = service
        self.bus = bus
        self.registry = registry
        self.log = log
        self.clock = clock
        self.progress = progress or Progress(registry)
        self.inventory = Inventory()
        self._seen = 0
        """The last decision of the log this process has applied (to its state and its inventory)."""
        self._specs = [
            ConsumerSpec(family, f"wi-svc-{service.name}-{family}", batch=SERVICE_BATCH)
            for family in service.consumes
        ]
        self._deciding = asyncio.Lock()
        self._hints_seen_applied = 0
        """The last hint the registry was seen to have applied (nothing newer means no need to wait)."""

    async def start(self) -> None:
        """Rebuilds the service's state (and inventory) from the decision log and sets up its consumers."""
        await asyncio.to_thread(self._rebuild)
        for spec in self._specs:
            await self.bus.ensure_consumer(spec)

    def loops(self) -> dict[str, Loop]:
        """One consuming loop per stream the service consumes, by name, to run until their stop is set."""
        return {f"{self.service.name} {spec.family}s": partial(self._consume, spec) for spec in self._specs}

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set (``start`` first)."""
        await asyncio.gather(*(loop(stop) for loop in self.loops().values()))

    async def _consume(self, spec: ConsumerSpec, stop: asyncio.Event) -> None:
        await self.bus.consume_batches(spec, partial(self._handle, stop=stop), stop)

    async def _handle(self, batch: Batch, stop: asyncio.Event) -> Mapping[int, str]:
        """Batch, decide, record, publish; the consumer acknowledges the batch when this returns."""
        inputs = [
            d.message for d in batch.deliveries if not is_drill(d.message) and self.service.wants(d.message)
        ]
        if not inputs:
            return {}
        await self._hints_applied(stop)
        started = time.perf_counter()
        async with self._deciding:
            fresh, before = await asyncio.to_thread(self._decide, inputs, self.clock())
        sent: list[HintBase | NoticeBase] = [*(h for d in (*before, *fresh) for h in d.hints)]
        sent += [n for d in (*before, *fresh) for n in d.notices]
        await self._publish(sent)
        await self._tell(fresh)
        _log_batch(self.service.name, len(inputs), fresh, before, len(sent), started)
        return {}

    def _decide(self, inputs: list[Message], now: datetime) -> tuple[list[Decision], list[Decision]]:
        """In one turn at the log: catch up, skip the inputs decided before, decide the rest in order and
        record them. Returns the decisions recorded now and those recorded before for these inputs."""
        name = self.service.name
        try:
            with self.log.turn(name, self._seen, self.service.needs_inventory) as turn:
                self._follow(turn.unseen())
                before = turn.decided([m.message_id for m in inputs])
                self.inventory.advance(now)
                wanted = set().union(*(self.service.concerns(m, self.inventory) for m in inputs))
                view = View(self.registry.effective_many(wanted, now), self.inventory)
                fresh: list[Decision] = []
                for message in inputs:
                    if message.message_id not in before:
                        decisions = self.service.decide(message, view, now)
                        self._follow(decisions)  # the next input sees the state this one left
                        fresh += decisions
                fresh = turn.record(fresh, now)
            self._seen = turn.head
        except BaseException:
            self._rebuild()  # the state moved on by decisions that were never recorded
            raise
        return fresh, [d for found in before.values() for d in found]

    def _follow(self, decisions: Sequence[Decision]) -> None:
        """Moves the service's state on by its own decisions, and the inventory by every change."""
        for decision in decisions:
            if decision.service == self.service.name:
                self.service.apply([decision])
            self.inventory.apply(decision.changes)
            if decision.seq is not None:
                self._seen = max(self._seen, decision.seq)

    def _rebuild(self) -> None:
        """Forgets the state and follows the whole log again (at start, and after a failed turn)."""
        self.service.reset()
        self.inventory = Inventory()
        self._seen = 0
        self._follow(self.log.all_for(self.service.name, self.service.needs_inventory))

    async def _publish(self, messages: list[HintBase | NoticeBase]) -> None:
        """Publishes, ``PUBLISHING_AT_ONCE`` in flight; each id was fixed by its decision."""
        source = f"/services/{self.service.name}"
        for start in range(0, len(messages), PUBLISHING_AT_ONCE):
            chunk = messages[start : start + PUBLISHING_AT_ONCE]
            await asyncio.gather(*(self.bus.publish(m, source=source) for m in chunk))

    async def _tell(self, decisions: list[Decision]) -> None:
        """Tells what was just recorded on core NATS (``DecisionsRecorded``), a few decisions a message,
        for operators' live views. Nothing keeps these messages and the log is the record, so a decision
        that cannot be told (a third-party service's name that is no slug) is logged, not retried."""
        for start in range(0, len(decisions), MAX_DECISIONS_A_MESSAGE):
            chunk = decisions[start : start + MAX_DECISIONS_A_MESSAGE]
            try:
                told = DecisionsRecorded(decisions=[recorded(d) for d in chunk])
                await self.bus.nc.publish(RECORDED_DECISIONS, told.model_dump_json().encode())
            except (ValidationError, nats.errors.Error) as exc:
                log.warning("%s: %d decision(s) not told live: %s", self.service.name, len(chunk), exc)

    async def _hints_applied(self, stop: asyncio.Event) -> None:
        """Waits until the registry has applied every hint published so far; Interrupted by ``stop``."""
        last = (await self.bus.js.stream_info(HINTS_CONSUMER.stream.name)).state.last_seq
        if last <= self._hints_seen_applied:
            return
        if await self.progress.reached(Family.HINT, last, HINTS_CATCH_UP_WAIT_S, stop):
            self._hints_seen_applied = last
        elif stop.is_set():
            raise Interrupted
        else:
            log.warning(
                "%s: the registry has not applied hints up to #%d; deciding on what it has",
                self.service.name,
                last,
            )


def _log_batch(
    service: str, inputs: int, fresh: list[Decision], before: list[Decision], sent: int, started: float
) -> None:
    """One line a batch: how many inputs, what was decided, what was sent."""
    actions = ", ".join(f"{n} {action}" for action, n in sorted(Counter(d.action for d in fresh).items()))
    log.info(
        "%s: %d input(s): %s%s; %d notice(s) and hint(s) sent in %.1f ms",
        service,
        inputs,
        actions or "no decision",
        f"; {len({d.input_id for d in before})} decided before, re-sent" if before else "",
        sent,
        1000 * (time.perf_counter() - started),
    )
    for decision in fresh:
        log.debug(
            "%s %s %s/%s: %s", service, decision.action, decision.tenant, decision.workload, decision.summary
        )
