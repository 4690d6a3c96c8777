"""The registry's shell: consumes hints, notices and responses into the store; answers hint queries."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime

import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace
from pydantic import ValidationError

from wi.bus import Bus, Consumer, ConsumerSpec, Delivery, Handler, Rejected
from wi.bus.subjects import QUERY_ROOT
from wi.contract import (
    Family,
    HintBase,
    HintsQuery,
    HintsView,
    NoticeBase,
    QueryError,
    QueryProblem,
    ResponseBase,
    problems_from,
    utc_now,
)

from .semantics import EffectiveHints, ResponseRefused
from .store import RegistryStore, UnknownNotice

log = logging.getLogger("wi.registry")
tracer = trace.get_tracer("wi.registry")

HINTS_CONSUMER = ConsumerSpec(Family.HINT, "wi-registry-hints")
NOTICES_CONSUMER = ConsumerSpec(Family.NOTICE, "wi-registry-notices")
RESPONSES_CONSUMER = ConsumerSpec(Family.RESPONSE, "wi-registry-responses")
QUERY_QUEUE = "wi-registry"
READ_YOUR_WRITES_WAIT_S = 3.0
NOTICE_CATCH_UP_WAIT_S = 10.0


def hints_view(effective: EffectiveHints, complete: bool = True) -> HintsView:
    """The wire form of a workload's effective hints."""
    return HintsView(
        tenant=effective.tenant,
        workload=effective.workload,
        workload_hints=list(effective.workload_hints.values()),
        instance_hints={i: list(h.values()) for i, h in effective.instance_hints.items()},
        complete=complete,
    )


class Registry:
    """Keeps the effective hints, their history, and notices with their states, in SQL.

    Several registry processes may run against one database: they share each durable consumer.
    """

    def __init__(self, bus: Bus, store: RegistryStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.bus = bus
        self.store = store
        self.clock = clock
        self._consumers: list[tuple[Consumer, Handler]] = []
        self._query: Subscription | None = None

    async def start(self) -> None:
        """Sets up the durable consumers and starts answering queries; ``run`` then consumes."""
        self._query = await self.bus.nc.subscribe(
            f"{QUERY_ROOT}.hints.*.*", queue=QUERY_QUEUE, cb=self._answer_query
        )
        self._consumers = [
            (await self.bus.consumer(HINTS_CONSUMER), self._apply_hint),
            (await self.bus.consumer(NOTICES_CONSUMER), self._apply_notice),
            (await self.bus.consumer(RESPONSES_CONSUMER), self._apply_response),
        ]

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set, then finishes the messages in hand and returns."""
        if self._query is None:
            await self.start()
        try:
            await asyncio.gather(*(consumer.run(handler, stop) for consumer, handler in self._consumers))
        finally:
            if self._query is not None and not self.bus.nc.is_closed:
                await self._query.unsubscribe()
            self._query = None

    async def _apply_hint(self, delivery: Delivery) -> None:
        hint = delivery.message
        assert isinstance(hint, HintBase)
        with tracer.start_as_current_span("registry apply hint") as span:
            span.set_attribute("wi.hint_id", hint.hint_id)
            new = await asyncio.to_thread(self.store.apply_hint, hint, delivery.stream_seq)
            span.set_attribute("wi.applied", new)
        scope = f"instance {hint.instance}" if hint.instance else "workload"
        log.info(
            "%s hint %s %s/%s %s (%s)",
            "applied" if new else "already had",
            hint.hint_id,
            hint.tenant,
            hint.workload,
            hint.kind,
            scope,
        )

    async def _apply_notice(self, delivery: Delivery) -> None:
        notice = delivery.message
        assert isinstance(notice, NoticeBase)
        new = await asyncio.to_thread(self.store.apply_notice, notice, delivery.stream_seq)
        log.info(
            "%s notice %s %s/%s %s",
            "recorded" if new else "already had",
            notice.notice_id,
            notice.tenant,
            notice.workload,
            notice.kind,
        )

    async def _apply_response(self, delivery: Delivery) -> None:
        response = delivery.message
        assert isinstance(response, ResponseBase)
        apply = functools.partial(
            self.store.apply_response, response, delivery.stream_seq, delivery.stored_at
        )
        try:
            try:
                status = await asyncio.to_thread(apply)
            except UnknownNotice:
                # A workload answers only notices it has received, so its notice is in the notices stream
                # already: wait here (keeping responses in order) until the registry has applied that stream
                # to its current end, then look again. Still unknown means there is no such notice.
                last = (await self.bus.js.stream_info(NOTICES_CONSUMER.stream.name)).state.last_seq
                if not await caught_up(self.bus, NOTICES_CONSUMER, last, NOTICE_CATCH_UP_WAIT_S):
                    raise
                status = await asyncio.to_thread(apply)
        except (ResponseRefused, UnknownNotice) as exc:
            raise Rejected(f"{response.kind} to notice {response.notice_id}: {exc}") from exc
        log.info(
            "notice %s is %s after %s from %s/%s",
            response.notice_id,
            status.state,
            response.kind,
            response.tenant,
            response.workload,
        )

    async def _answer_query(self, msg: Msg) -> None:
        *_, tenant, workload = msg.subject.split(".")
        try:
            query = HintsQuery.model_validate_json(msg.data or b"{}")
        except ValidationError as exc:
            problems = [
                QueryProblem(field=p.field, rule=p.rule, message=p.message) for p in problems_from(exc)
            ]
            await msg.respond(QueryError(problems=problems).model_dump_json().encode())
            return
        complete = query.after_seq is None or await caught_up(
            self.bus, HINTS_CONSUMER, query.after_seq, READ_YOUR_WRITES_WAIT_S
        )
        effective = await asyncio.to_thread(self.store.effective, tenant, workload, self.clock())
        await msg.respond(hints_view(effective, complete).model_dump_json(exclude_none=True).encode())


async def caught_up(bus: Bus, spec: ConsumerSpec, seq: int, wait_s: float) -> bool:
    """Waits up to ``wait_s`` until a consumer group has applied (or parked) its stream up to ``seq``."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        try:
            info = await bus.js.consumer_info(spec.stream.name, spec.durable)
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None and info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= seq:
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.02)
