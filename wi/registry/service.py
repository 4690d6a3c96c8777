"""The registry's shell: consumes hints, notices and responses into the store; answers hint queries and
attach requests (a workload's open notices)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import TypeVar

import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace
from pydantic import ValidationError

from wi.bus import RECORDED_NOTICES, Batch, BatchHandler, Bus, ConsumerSpec, Loop
from wi.bus.subjects import ATTACH_ROOT, QUERY_ROOT, workload_of
from wi.contract import (
    ATTACH_PAGE,
    AttachError,
    AttachReply,
    AttachRequest,
    Family,
    HintBase,
    HintsQuery,
    HintsView,
    InvalidMessage,
    Message,
    NoticeBase,
    NoticeRecorded,
    NoticesRecorded,
    QueryError,
    QueryProblem,
    ResponseAction,
    ResponseBase,
    Verdict,
    derived_id,
    problems_from,
    utc_now,
)
from wi.contract.attach import MAX_ERROR_CHARS

from .semantics import EffectiveHints, ResponseRefused
from .store import Judgement, RegistryStore, UnknownNotice

log = logging.getLogger("wi.registry")
tracer = trace.get_tracer("wi.registry")

REGISTRY_BATCH = 256
HINTS_CONSUMER = ConsumerSpec(Family.HINT, "wi-registry-hints", batch=REGISTRY_BATCH, ordered=True)
NOTICES_CONSUMER = ConsumerSpec(Family.NOTICE, "wi-registry-notices", batch=REGISTRY_BATCH, ordered=True)
RESPONSES_CONSUMER = ConsumerSpec(
    Family.RESPONSE, "wi-registry-responses", batch=REGISTRY_BATCH, ordered=True
)
CONSUMERS = (HINTS_CONSUMER, NOTICES_CONSUMER, RESPONSES_CONSUMER)
QUERY_QUEUE = "wi-registry"
READ_YOUR_WRITES_WAIT_S = 3.0
NOTICE_CATCH_UP_WAIT_S = 10.0
LEGACY_NOTICE_CONSUMERS = "wi-notices_"
"""The name prefix of the per-workload durable consumers notices were once delivered by."""


def hints_view(effective: EffectiveHints, complete: bool = True) -> HintsView:
    """The wire form of a workload's effective hints."""
    return HintsView(
        tenant=effective.tenant,
        workload=effective.workload,
        workload_hints=list(effective.workload_hints.values()),
        instance_hints={i: list(h.values()) for i, h in effective.instance_hints.items()},
        complete=complete,
    )


class Progress:
    """How far the registry has applied each stream (the watermarks it writes with what it applies), and
    a wait until it got somewhere.

    A registry in this process wakes waiters as it commits; commits of other processes are seen by
    polling the watermark every ``POLL_S``.
    """

    POLL_S = 0.05

    def __init__(self, store: RegistryStore) -> None:
        self.store = store
        self._advanced = asyncio.Event()

    def advanced(self) -> None:
        """Wakes the waiters: this process's registry has just committed."""
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def reached(
        self, family: Family, seq: int, wait_s: float, stop: asyncio.Event | None = None
    ) -> bool:
        """Waits up to ``wait_s`` (or until ``stop`` is set) until the family's stream is applied up to
        ``seq``; False if it is not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            advanced = self._advanced
            if await asyncio.to_thread(self.store.watermark, family) >= seq:
                return True
            left = deadline - loop.time()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), min(self.POLL_S, left))


class Registry:
    """Keeps the effective hints, their history, and notices with their states, in SQL.

    Each stream is applied in batches, one transaction a batch, which also moves the stream's watermark
    (``Progress``). Several registry processes may run against one database: they share each durable
    consumer, which hands out one batch at a time, in stream order.
    """

    def __init__(self, bus: Bus, store: RegistryStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.bus = bus
        self.store = store
        self.clock = clock
        self.progress = Progress(store)
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Starts answering hint queries and attach requests and sets up the durable consumers; ``loops``
        then consume."""
        for subject, answer in (
            (f"{QUERY_ROOT}.hints.*.*", self._answer_query),
            (f"{ATTACH_ROOT}.*.*", self._answer_attach),
        ):
            self._subscriptions.append(await self.bus.nc.subscribe(subject, queue=QUERY_QUEUE, cb=answer))
        for spec in CONSUMERS:
            await self.bus.ensure_consumer(spec)
        await self._retire_legacy_notice_consumers()

    async def _retire_legacy_notice_consumers(self) -> None:
        """Deletes the per-workload notice consumers of earlier versions (JetStream's republish delivers
        notices now)."""
        stream = NOTICES_CONSUMER.stream.name
        retired = [
            info.name
            for info in await self.bus.js.consumers_info(stream)
            if info.name.startswith(LEGACY_NOTICE_CONSUMERS)
        ]
        for name in retired:
            with contextlib.suppress(nats.js.errors.NotFoundError):  # another registry process was first
                await self.bus.js.delete_consumer(stream, name)
        if retired:
            log.info("deleted %d per-workload notice consumer(s) of an earlier version", len(retired))

    def loops(self) -> dict[str, Loop]:
        """One consuming loop per stream, by name, to run (and restart) until their stop is set."""
        handlers: dict[Family, BatchHandler] = {
            Family.HINT: self._apply_hints,
            Family.NOTICE: self._apply_notices,
            Family.RESPONSE: self._apply_responses,
        }
        return {
            f"registry {spec.family}s": partial(self.bus.consume_batches, spec, handlers[spec.family])
            for spec in CONSUMERS
        }

    async def stop(self) -> None:
        """Stops answering queries and attach requests."""
        if not self.bus.nc.is_closed:
            for subscription in self._subscriptions:
                await subscription.unsubscribe()
        self._subscriptions = []

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set, then finishes the batches in hand and returns."""
        if not self._subscriptions:
            await self.start()
        try:
            await asyncio.gather(*(loop(stop) for loop in self.loops().values()))
        finally:
            await self.stop()

    async def _apply_hints(self, batch: Batch) -> Mapping[int, str]:
        hints = [(_as(HintBase, d.message), d.stream_seq) for d in batch.deliveries]
        started = time.perf_counter()
        with _spans(batch, "registry apply hint"):
            applied = await asyncio.to_thread(self.store.apply_hints, hints, batch.through)
        self.progress.advanced()
        _log_batch("hints", len(hints), sum(applied), batch.through, started)
        return {}

    async def _apply_notices(self, batch: Batch) -> Mapping[int, str]:
        notices = [(_as(NoticeBase, d.message), d.stream_seq) for d in batch.deliveries]
        started = time.perf_counter()
        with _spans(batch, "registry record notice"):
            fresh = await asyncio.to_thread(self.store.apply_notices, notices, batch.through)
        self.progress.advanced()
        recorded = [_recorded(notice, seq) for (notice, seq), new in zip(notices, fresh, strict=True) if new]
        if recorded:  # one core message a batch wakes whatever waits on these workloads' notices
            await self.bus.nc.publish(
                RECORDED_NOTICES, NoticesRecorded(notices=recorded).model_dump_json().encode()
            )
        _log_batch("notices", len(notices), sum(fresh), batch.through, started)
        return {}

    async def _apply_responses(self, batch: Batch) -> Mapping[int, str]:
        """Applies responses in order; refused ones (late, conflict, unknown notice...) are parked."""
        responses = [(_as(ResponseBase, d.message), d.stream_seq, d.stored_at) for d in batch.deliveries]
        started = time.perf_counter()
        named = {response.notice_id for response, _, _ in responses}
        if named - await asyncio.to_thread(self.store.known_notices, named):
            # A workload answers only notices it has received, so they are in the notices stream already.
            await self._notices_caught_up()
        with _spans(batch, "registry apply response"):
            judgements = await asyncio.to_thread(self.store.apply_responses, responses, batch.through)
        self.progress.advanced()
        await self._tell([_judged(r, j) for (r, _, _), j in zip(responses, judgements, strict=True)])
        refused = {
            seq: f"{response.kind} to notice {response.notice_id}: {judgement.refused}"
            for (response, seq, _), judgement in zip(responses, judgements, strict=True)
            if judgement.refused is not None
        }
        _log_batch("responses", len(responses), len(responses) - len(refused), batch.through, started)
        return refused

    async def _tell(self, verdicts: list[Verdict]) -> None:
        """Publishes verdicts, all in flight at once; each id is fixed by the response judged, so a batch
        applied again (after a failure between its commit and here) tells the same verdicts once."""
        await asyncio.gather(*(self.bus.publish(verdict) for verdict in verdicts))

    async def _notices_caught_up(self) -> bool:
        """Waits (up to ``NOTICE_CATCH_UP_WAIT_S``) until every notice stored so far is recorded."""
        last = (await self.bus.js.stream_info(NOTICES_CONSUMER.stream.name)).state.last_seq
        return await self.progress.reached(Family.NOTICE, last, NOTICE_CATCH_UP_WAIT_S)

    async def _answer_attach(self, msg: Msg) -> None:
        """Replies with a page of the workload's open notices. The client subscribed to its deliver
        subjects before asking, so every notice stored before it listened is recorded once caught up."""
        try:
            tenant, workload = workload_of(msg.subject)
            request = AttachRequest.model_validate_json(msg.data or b"{}", strict=True)
        except (InvalidMessage, ValidationError) as exc:
            found = exc.problems if isinstance(exc, InvalidMessage) else problems_from(exc)
            error = "; ".join(f"{p.field}: {p.message} [{p.rule}]" for p in found)
            await msg.respond(AttachError(error=error[:MAX_ERROR_CHARS]).model_dump_json().encode())
            return
        if not await self._notices_caught_up():
            busy = AttachError(error="the registry is catching up with the notices; attach again shortly")
            await msg.respond(busy.model_dump_json().encode())
            return
        stored = await asyncio.to_thread(
            self.store.notices, tenant, workload, after=request.after, open_only=True, limit=ATTACH_PAGE
        )
        page = [s.notice for s in stored]
        while True:  # a page of large notices may not fit a NATS message: fewer, and more pages
            more = len(stored) == ATTACH_PAGE or len(page) < len(stored)
            reply = AttachReply(notices=page, next_cursor=stored[len(page) - 1].stream_seq if more else None)
            body = reply.model_dump_json(exclude_none=True).encode()
            if len(body) <= self.bus.nc.max_payload or len(page) == 1:
                break
            page = page[: len(page) // 2]
        await msg.respond(body)

    async def _answer_query(self, msg: Msg) -> None:
        try:
            tenant, workload = workload_of(msg.subject)
            query = HintsQuery.model_validate_json(msg.data or b"{}", strict=True)
        except (InvalidMessage, ValidationError) as exc:
            found = exc.problems if isinstance(exc, InvalidMessage) else problems_from(exc)
            problems = [QueryProblem(field=p.field, rule=p.rule, message=p.message) for p in found]
            await msg.respond(QueryError(problems=problems).model_dump_json().encode())
            return
        complete = query.after_seq is None or await self.progress.reached(
            Family.HINT, query.after_seq, READ_YOUR_WRITES_WAIT_S
        )
        effective = await asyncio.to_thread(self.store.effective, tenant, workload, self.clock())
        await msg.respond(hints_view(effective, complete).model_dump_json(exclude_none=True).encode())


def _recorded(notice: NoticeBase, seq: int) -> NoticeRecorded:
    return NoticeRecorded(
        tenant=notice.tenant,
        workload=notice.workload,
        notice_id=notice.notice_id,
        notice_kind=notice.kind,
        cursor=seq,
    )


def _judged(response: ResponseBase, judgement: Judgement) -> Verdict:
    """The verdict on a response: where its notice stands after it, or why it was refused."""
    refused = judgement.refused
    status = judgement.status
    return Verdict(
        tenant=response.tenant,
        workload=response.workload,
        verdict_id=derived_id(f"judged-{response.tenant}", response.response_id, 0),
        notice_id=response.notice_id,
        notice_kind=judgement.notice_kind,
        state=None if status is None else status.state,
        deferred_until=None if status is None else status.deferred_until,
        response_id=response.response_id,
        response=ResponseAction(response.kind),
        refused=None if refused is None else _rule(refused),
        reason=None if refused is None else str(refused)[:500],
        cursor=judgement.cursor,
        drill=True if judgement.drill else None,
    )


def _rule(refused: ResponseRefused | UnknownNotice) -> str:
    return refused.rule if isinstance(refused, ResponseRefused) else "unknown_notice"


M = TypeVar("M", bound=Message)


def _as(kind: type[M], message: Message) -> M:
    assert isinstance(message, kind)
    return message


@contextlib.contextmanager
def _spans(batch: Batch, name: str) -> Iterator[None]:
    """A span per message of the batch, child of its consume span, around applying the batch."""
    spans = [tracer.start_span(name, context=d.trace_context) for d in batch.deliveries]
    try:
        yield
    finally:
        for span in spans:
            span.end()


def _log_batch(what: str, count: int, new: int, through: int, started: float) -> None:
    """One line a batch: the registry's hot path logs no line per message."""
    log.info(
        "applied %d %s (%d new) through #%d in %.1f ms",
        count,
        what,
        new,
        through,
        1000 * (time.perf_counter() - started),
    )
