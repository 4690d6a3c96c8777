"""The contract of a platform service, and the shell that runs one on the bus.

A service declares the streams it consumes, says which of their messages it wants, and decides with a
pure policy: its state and one input in, decisions out, no I/O. The shell (``ServiceRunner``) consumes
through durable JetStream consumers shared by every process of the service, drops what the service does
not want before any other work, hands each input to ``decide`` with a view of the hints (and of what
runs where), records every decision with its reasons in the audit table, and publishes the hints and
notices the decisions send.

``decide`` changes nothing; the runner applies each decision to the service's state once it is
recorded, so a failure in between leaves the state as it was for the retry. Decisions are keyed by the
input's id. When an input comes again (a redelivery after a crash), the runner publishes the notices it
recorded rather than deciding anew, and the notices' ids are fixed by the decision, so JetStream and
the registry store them once: a restarted process neither repeats an action nor loses one.

Processes of one service take turns to decide: each holds the service's lock row while it applies the
decisions the others recorded since it last looked, checks that no other process decided the input,
decides and records. So each decision sees the state every earlier one left, whichever process made it.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, uuid5

from wi.audit import AuditStore, Decision
from wi.bus import Bus, Consumer, ConsumerSpec, Delivery
from wi.contract import Family, HintBase, Message, NoticeBase, TenantMessage, utc_now
from wi.registry import HINTS_CONSUMER, RegistryStore, caught_up

from .fleet import Fleet
from .inventory import Instance, inventory_from

log = logging.getLogger("wi.services")

ENTRY_POINT_GROUP = "wi.services"
HINTS_CATCH_UP_WAIT_S = 10.0
CATCH_UP_WINDOW_S = 60.0
"""How far back before its newest known decision a runner looks for decisions of other processes: more
than any clock skew between them or delay between deciding and recording."""

ALLOCATOR = "allocator"
"""The service whose placements make the inventory."""


def derived_id(prefix: str, input_id: str, index: int) -> str:
    """The id of something a decision sends: fixed by the input and position, so a re-send is the same.

    Readable (``evict-<input>-0``) while that fits a message id's 128 characters, else a UUID derived
    from the same parts.
    """
    readable = f"{prefix}-{input_id}-{index}"
    return readable if len(readable) <= 128 else f"{prefix}-{uuid5(NAMESPACE_URL, readable)}"


@dataclass(frozen=True)
class View:
    """What a decision may read, gathered by the runner before it calls ``decide``."""

    hints: Mapping[tuple[str, str], dict[str, HintBase]]
    """(tenant, workload) to the workload-wide hints in effect, for the workloads the input concerns."""
    instances: tuple[Instance, ...] = ()
    """What runs where (for services that declare ``needs_inventory``)."""

    def hints_for(self, tenant: str, workload: str) -> dict[str, HintBase]:
        """A workload's hints in effect, by kind (empty if it has none)."""
        return dict(self.hints.get((tenant, workload), {}))


@dataclass(frozen=True)
class ServiceContext:
    """What every service is given: the fleet and the operator's policy choices."""

    fleet: Fleet
    placement_goal: str = "cheapest"
    """cheapest or greenest: what region-free placement optimizes."""
    llm_perf_dir: Path | None = None
    """Where the LLM performance tables are; None: the default place."""


class PlatformService(ABC):
    """A platform service. Subclass it, say what it consumes, and implement ``decide``.

    Register it in the entry-point group ``wi.services`` under its ``name``:
    ``[project.entry-points."wi.services"] my-service = "my_package:MyService"``.
    """

    name: ClassVar[str]
    """The name `wi up --services` and `wi audit` use."""
    consumes: ClassVar[tuple[Family, ...]]
    """The streams whose messages reach ``decide``."""
    needs_inventory: ClassVar[bool] = False
    """Whether ``decide`` reads what runs where (and the hints of every workload running)."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.fleet = context.fleet

    def wants(self, message: Message) -> bool:
        """Whether an input concerns the service; the runner drops the rest before any other work."""
        return True

    def concerns(self, message: Message, instances: Sequence[Instance]) -> set[tuple[str, str]]:
        """The (tenant, workload) pairs whose hints ``decide`` reads for this input.

        By default the workload a tenant message is about and those of every instance in the inventory;
        a service names fewer (the instances an event touches) or others (the LLM endpoints of a power
        domain) here, and the runner reads only those.
        """
        mine = {(message.tenant, message.workload)} if isinstance(message, TenantMessage) else set()
        return mine | {(i.tenant, i.workload) for i in instances}

    @abstractmethod
    def reset(self) -> None:
        """Forgets all state (before ``restore`` replays the recorded decisions)."""

    @abstractmethod
    def apply(self, decisions: Sequence[Decision]) -> None:
        """Moves the state on by decisions now recorded. ``decide`` itself changes nothing."""

    def restore(self, decisions: Sequence[Decision]) -> None:
        """Rebuilds the state from the service's own past decisions, oldest first (at start)."""
        self.reset()
        self.apply(decisions)

    @abstractmethod
    def decide(self, message: Message, view: View, now: datetime) -> list[Decision]:
        """The decisions for one input. Pure: reads its state, the view and the time; changes nothing."""

    def decision(
        self,
        input_id: str,
        index: int,
        action: str,
        summary: str,
        reasons: Sequence[str] = (),
        *,
        notices: Sequence[NoticeBase] = (),
        hints: Sequence[HintBase] = (),
        tenant: str | None = None,
        workload: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Decision:
        """A decision of this service: the ``index``-th about input ``input_id``."""
        return Decision(
            service=self.name,
            input_id=input_id,
            index=index,
            action=action,
            summary=summary,
            reasons=tuple(reasons),
            notices=tuple(notices),
            hints=tuple(hints),
            tenant=tenant,
            workload=workload,
            detail=detail or {},
        )

    def alert(self, input_id: str, index: int, log: Sequence[str], summary: str) -> Decision:
        """A decision with no notice: something the operator must see, with the steps that led to it."""
        return self.decision(input_id, index, "alert", summary, log)


def installed_services() -> dict[str, type[PlatformService]]:
    """Every service installed in the entry-point group ``wi.services``, by name."""
    found: dict[str, type[PlatformService]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        service = entry.load()
        if not (isinstance(service, type) and issubclass(service, PlatformService)):
            raise TypeError(f"entry point {entry.name} = {entry.value} is not a PlatformService")
        found[entry.name] = service
    return found


class DecisionTail:
    """Follows one service's recorded decisions so that each is handed out once: all at first, then the new.

    It looks back CATCH_UP_WINDOW_S before the newest decision it knows of, and remembers keys twice that
    far back, so decisions recorded late or by a process with a slower clock are still caught.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._known: dict[str, datetime] = {}

    @property
    def since(self) -> datetime:
        """Where the next look starts."""
        if not self._known:
            return datetime(1970, 1, 1, tzinfo=UTC)
        return max(self._known.values()) - timedelta(seconds=CATCH_UP_WINDOW_S)

    @property
    def known(self) -> Collection[str]:
        """The keys handed out already, within the window."""
        return self._known.keys()

    def remember(self, decisions: Sequence[Decision]) -> None:
        """Notes decisions as handed out, forgetting those too old for a look to meet again."""
        for decision in decisions:
            assert decision.decided_at is not None
            self._known[decision.key] = decision.decided_at
        if self._known:
            horizon = max(self._known.values()) - timedelta(seconds=2 * CATCH_UP_WINDOW_S)
            self._known = {k: t for k, t in self._known.items() if t >= horizon}

    def new(self, audit: AuditStore) -> list[Decision]:
        """The decisions recorded since the last look, oldest first (and now remembered)."""
        found = audit.unseen(self.service, self.since, self.known)
        self.remember(found)
        return found


class ServiceRunner:
    """Runs one service: consumes, decides, records, publishes."""

    def __init__(
        self,
        service: PlatformService,
        bus: Bus,
        registry: RegistryStore,
        audit: AuditStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.service = service
        self.bus = bus
        self.registry = registry
        self.audit = audit
        self.clock = clock
        self._consumers: list[Consumer] = []
        self._deciding = asyncio.Lock()
        self._hints_seen_applied = 0
        """The last hint the registry was seen to have applied (nothing newer means no need to wait)."""
        self._applied = DecisionTail(service.name)
        """The service's decisions applied to its state."""
        self._placements = DecisionTail(ALLOCATOR)
        self._instances: tuple[Instance, ...] = ()
        """What runs where, built up from the placements as they come (for services that need it)."""

    async def start(self) -> None:
        """Rebuilds the service's state from the audit table and sets up its consumers."""
        recorded = await asyncio.to_thread(self.audit.all_for, self.service.name)
        self.service.restore(recorded)
        self._applied.remember(recorded)
        for family in self.service.consumes:
            spec = ConsumerSpec(family, f"wi-svc-{self.service.name}-{family}")
            self._consumers.append(await self.bus.consumer(spec))

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set."""
        if not self._consumers:
            await self.start()
        await asyncio.gather(*(consumer.run(self._handle, stop) for consumer in self._consumers))

    def _hints(self, tenant: str, workload: str) -> dict[str, HintBase]:
        return self.registry.effective(tenant, workload, self.clock()).workload_hints

    async def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        if not self.service.wants(message):
            return
        name = self.service.name
        await self._hints_applied()
        async with self._deciding:  # one input at a time here; the database lock orders the processes
            view = await asyncio.to_thread(self._view, message)
            now = self.clock()
            decide = partial(self._catch_up_and_decide, message, view, now)
            fresh, before = await asyncio.to_thread(
                self.audit.decide_exclusively,
                name,
                message.message_id,
                self._applied.since,
                self._applied.known,
                decide,
                now,
            )
            self.service.apply(fresh)
            self._applied.remember(fresh)
        if before:  # a redelivery, or another process decided it meanwhile
            log.info("%s: %s was decided before; re-sending its notices", name, message.message_id)
        for decision in fresh:
            log.info(
                "%s decided %s for %s/%s: %s; because %s",
                name,
                decision.action,
                decision.tenant,
                decision.workload,
                decision.summary,
                " | ".join(decision.reasons),
            )
        decisions = fresh or before
        for decision in decisions:
            for sent in (*decision.hints, *decision.notices):
                await self.bus.publish(sent, source=f"/services/{name}")

    def _catch_up_and_decide(
        self, message: Message, view: View, now: datetime, unseen: list[Decision], decided_before: bool
    ) -> list[Decision]:
        """Applies what other processes of the service decided meanwhile, then decides (under the lock)."""
        if unseen:
            log.info("%s: applying %d decisions made by other processes", self.service.name, len(unseen))
            self.service.apply(unseen)
            self._applied.remember(unseen)
        return [] if decided_before else self.service.decide(message, view, now)

    async def _hints_applied(self) -> None:
        """Waits until the registry has applied every hint published so far."""
        last = (await self.bus.js.stream_info(HINTS_CONSUMER.stream.name)).state.last_seq
        if last <= self._hints_seen_applied:
            return
        if await caught_up(self.bus, HINTS_CONSUMER, last, HINTS_CATCH_UP_WAIT_S):
            self._hints_seen_applied = last
        else:
            log.warning(
                "%s: the registry has not applied hints up to #%d; deciding on what it has",
                self.service.name,
                last,
            )

    def _view(self, message: Message) -> View:
        """The hints (and, if the service needs it, the inventory) a decision may read."""
        if self.service.needs_inventory:
            self._instances += inventory_from(self._placements.new(self.audit), self.service.fleet)
        workloads = self.service.concerns(message, self._instances)
        return View({w: self._hints(*w) for w in workloads}, self._instances)
