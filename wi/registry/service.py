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
from opentelemetry import trace
from pydantic import ValidationError

from wi.bus import (
    RECORDED_HINTS,
    RECORDED_NOTICES,
    Batch,
    BatchedResponder,
    BatchHandler,
    Bus,
    ConsumerSpec,
    Loop,
    reply,
)
from wi.bus.subjects import ATTACH_ROOT, QUERY_ROOT, workload_of
from wi.contract import (
    ATTACH_PAGE,
    AttachError,
    AttachReply,
    AttachRequest,
    ContractModel,
    Family,
    HintBase,
    HintedWorkload,
    HintsQuery,
    HintsRecorded,
    HintsView,
    InvalidMessage,
    Message,
    NoticeBase,
    NoticeRecorded,
    NoticesRecorded,
    Problem,
    QueryError,
    ResponseAction,
    ResponseBase,
    Verdict,
    derived_id,
    problems_from,
    utc_now,
)
from wi.contract.attach import MAX_ERROR_CHARS

from .progress import Progress
from .semantics import EffectiveHints, ResponseRefused
from .store import Judgement, RegistryStore, StoredNotice, UnknownNotice

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
REQUESTS_BATCH = 500
"""The most attach requests (or hint queries) answered together: one stream read and one database session
for a batch of attaches, one read for a batch's queries that need not wait."""
MAX_WAITING_QUERIES = 1000
"""Hint queries that may wait at once for their own writes (``after_seq``); beyond, a query is answered at
once, marked incomplete."""
NOTICE_CATCH_UP_WAIT_S = 10.0
ATTACH_CATCH_UP_WAIT_S = 5.0
"""How long an attach waits for the registry to catch up before it is answered "busy": less than the SDK's
10 s request timeout, so the client hears why rather than timing out."""
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
        self._responders = {
            f"{QUERY_ROOT}.hints.*.*": BatchedResponder("hint queries", self._answer_queries, REQUESTS_BATCH),
            f"{ATTACH_ROOT}.*.*": BatchedResponder("attach requests", self._answer_attaches, REQUESTS_BATCH),
        }
        self._started = False
        self._stopping = asyncio.Event()
        self._waiting_queries: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Starts answering hint queries and attach requests and sets up the durable consumers; ``loops``
        then consume."""
        for subject, responder in self._responders.items():
            await responder.start(self.bus.nc, subject, QUERY_QUEUE)
        self._started = True
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
        """Stops answering queries and attach requests; answers those already received at once (those
        that would wait for the registry to catch up are answered as they stand)."""
        self._stopping.set()
        try:
            for responder in self._responders.values():
                await responder.stop(self.bus.nc)
            await asyncio.gather(*self._waiting_queries, return_exceptions=True)
        finally:
            self._stopping = asyncio.Event()
            self._started = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consumes until ``stop`` is set, then finishes the batches in hand and returns."""
        if not self._started:
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
        hinted = dict.fromkeys(
            (hint.tenant, hint.workload) for (hint, _), new in zip(hints, applied, strict=True) if new
        )
        if hinted:  # one core message a batch, so that no one follows every hint to learn whose changed
            told = HintsRecorded(workloads=[HintedWorkload(tenant=t, workload=w) for t, w in hinted])
            await self.bus.nc.publish(RECORDED_HINTS, told.model_dump_json().encode())
        _log_batch("hints", len(hints), sum(applied), batch.through, started)
        return {}

    async def _apply_notices(self, batch: Batch) -> Mapping[int, str]:
        notices = [(_as(NoticeBase, d.message), d.stream_seq) for d in batch.deliveries]
        started = time.perf_counter()
        with _spans(batch, "registry record notice"):
            fresh = await asyncio.to_thread(
                self.store.apply_notices, notices, batch.through, recorded_at=self.clock()
            )
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

    async def _notices_caught_up(self, wait_s: float = NOTICE_CATCH_UP_WAIT_S) -> bool:
        """Waits (up to ``wait_s``, or until the registry stops) until every notice stored so far is
        recorded."""
        return await self.progress.caught_up(self.bus.js, Family.NOTICE, wait_s, self._stopping)

    async def _answer_attaches(self, requests: list[Msg]) -> None:
        """Replies to each request with a page of its workload's open notices. Each client subscribed to
        its deliver subjects before asking, so every notice stored before it listened is recorded once the
        registry has caught up with the stream as it is now, after every request of the batch arrived."""
        asked = await _parse_requests(requests, AttachRequest, _attach_error)
        if not asked:
            return
        started = time.perf_counter()
        if not await self._notices_caught_up(ATTACH_CATCH_UP_WAIT_S):
            busy = AttachError(error="the registry is catching up with the notices; attach again shortly")
            body = busy.model_dump_json().encode()
            for msg, *_ in asked:
                await reply(msg, body)
            log.warning("answered %d attach request(s): busy, notices not caught up", len(asked))
            return
        pages = await asyncio.to_thread(
            self.store.open_notices_pages, [(t, w, r.after) for _, t, w, r in asked], ATTACH_PAGE
        )
        for (msg, *_), stored in zip(asked, pages, strict=True):
            await reply(msg, self._attach_reply(stored))
        log.info(
            "answered %d attach request(s) with %d open notice(s) in %.1f ms",
            len(asked),
            sum(map(len, pages)),
            1000 * (time.perf_counter() - started),
        )

    def _attach_reply(self, stored: list[StoredNotice]) -> bytes:
        """A page that fits in a NATS message: fewer notices, and more pages, when they are large."""
        page = [s.notice for s in stored]
        while True:
            more = len(stored) == ATTACH_PAGE or len(page) < len(stored)
            answer = AttachReply(notices=page, next_cursor=stored[len(page) - 1].stream_seq if more else None)
            body = answer.model_dump_json(exclude_none=True).encode()
            if len(body) <= self.bus.nc.max_payload:
                return body
            if len(page) == 1:  # the server's max_payload was lowered below a stored notice's size
                error = f"notice {page[0].notice_id} is larger than NATS's max_payload; raise it"
                return AttachError(error=error).model_dump_json().encode()
            page = page[: len(page) // 2]

    async def _answer_queries(self, requests: list[Msg]) -> None:
        """Answers the batch's hint queries with one read of the database; a query waiting for its own
        write (``after_seq``) waits on a task of its own, so it holds up no other. Beyond
        ``MAX_WAITING_QUERIES`` waiting, a query is answered at once, marked incomplete."""
        asked = await _parse_requests(requests, HintsQuery, QueryError.of)
        waits = any(query.after_seq is not None for *_, query in asked)
        watermark = await self.progress.watermark(Family.HINT) if waits else 0
        ready: list[tuple[Msg, str, str, bool]] = []
        for msg, tenant, workload, query in asked:
            if query.after_seq is None or query.after_seq <= watermark:
                ready.append((msg, tenant, workload, True))
            elif len(self._waiting_queries) < MAX_WAITING_QUERIES:
                answering = self._answer_when_written(msg, tenant, workload, query.after_seq)
                waiting = asyncio.create_task(answering, name=f"hint query of {tenant}/{workload}")
                self._waiting_queries.add(waiting)
                waiting.add_done_callback(self._waiting_queries.discard)
            else:
                ready.append((msg, tenant, workload, False))
        if ready:
            found = await asyncio.to_thread(
                self.store.effective_many, {(t, w) for _, t, w, _ in ready}, self.clock()
            )
            for msg, tenant, workload, complete in ready:
                await reply(msg, _query_reply(found[(tenant, workload)], complete))

    async def _answer_when_written(self, msg: Msg, tenant: str, workload: str, after_seq: int) -> None:
        try:
            stop = self._stopping
            complete = await self.progress.reached(Family.HINT, after_seq, READ_YOUR_WRITES_WAIT_S, stop)
            effective = await asyncio.to_thread(self.store.effective, tenant, workload, self.clock())
        except Exception:
            log.exception("hint query of %s/%s unanswered; it will ask again", tenant, workload)
            return
        await reply(msg, _query_reply(effective, complete))


def _query_reply(effective: EffectiveHints, complete: bool) -> bytes:
    return hints_view(effective, complete).model_dump_json(exclude_none=True).encode()


P = TypeVar("P", AttachRequest, HintsQuery)


async def _parse_requests(
    requests: list[Msg], kind: type[P], refusal: Callable[[list[Problem]], ContractModel]
) -> list[tuple[Msg, str, str, P]]:
    """Each request with its workload and body as the contract says (an empty body is an empty
    request); one that breaks the contract is answered at once with ``refusal`` of its problems."""
    asked = []
    for msg in requests:
        try:
            tenant, workload = workload_of(msg.subject)
            asked.append((msg, tenant, workload, kind.model_validate_json(msg.data or b"{}", strict=True)))
        except (InvalidMessage, ValidationError) as exc:
            found = exc.problems if isinstance(exc, InvalidMessage) else problems_from(exc)
            await reply(msg, refusal(found).model_dump_json().encode())
    return asked


def _attach_error(found: list[Problem]) -> AttachError:
    error = "; ".join(map(str, found))
    return AttachError(error=error[:MAX_ERROR_CHARS])


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
