"""The JetStream bus: idempotent stream setup, publishing, durable consumption with dead-lettering."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RePublish,
    StorageType,
    StreamConfig,
)
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from wi.contract import Family, InvalidMessage, Message

from .cloudevents import CloudEvent, decode, encode
from .subjects import ALL_STREAMS, STREAMS, StreamSpec, deadletter_subject, subject_for

log = logging.getLogger("wi.bus")
T = TypeVar("T")
tracer = trace.get_tracer("wi.bus")

DEADLETTER_REASON = "wi-deadletter-reason"
DEADLETTER_SUBJECT = "wi-deadletter-subject"
DEADLETTER_STREAM_SEQ = "wi-deadletter-stream-seq"
DEADLETTER_CONSUMER = "wi-deadletter-consumer"
DEADLETTER_TRUNCATED = "wi-deadletter-truncated"
"""On a parked message cut short to fit the server's max_payload: its original size in bytes."""
_PERMISSIONS_VIOLATION = re.compile(r'permissions violation for (?:publish|subscription) to "([^"]*)"', re.I)
PUBLISH_ATTEMPT_S = 2.0
"""How long one publish attempt waits for JetStream's answer before it is sent again."""
FETCH_FAILURES_BEFORE_RESTART = 10
"""Consecutive failed fetches after which a consumer gives up, so that its supervisor sets it up again."""
MAX_REPLICAS = 3
"""The most replicas a stream gets by default (one per server of the cluster, up to this)."""
SETUP_TIMEOUT_S = 30.0
"""How long setting up streams and consumers asks again while JetStream does not answer: right after a
whole cluster restarts, some API requests go unanswered although every node reports healthy."""


class Rejected(Exception):
    """A well-formed message that cannot be applied (it contradicts state); it is parked at once."""


class Interrupted(Exception):
    """Raised by a handler when its consumer is stopping mid-message: the message goes back for redelivery
    at once, uncounted, and the consumer stops."""


@dataclass(frozen=True)
class Published:
    """Where a publish landed; ``duplicate`` is true when JetStream had stored the same id already."""

    stream: str
    seq: int
    duplicate: bool


@dataclass(frozen=True)
class Delivery:
    """A validated message handed to a consumer's handler, with where it came from."""

    message: Message
    event: CloudEvent
    subject: str
    stream_seq: int
    stored_at: datetime
    """When JetStream stored the message: the platform's clock, the same on every redelivery."""
    attempt: int
    trace_context: Context = field(default_factory=Context, compare=False)
    """The consume span's context (continuing the publisher's trace): parent of spans that apply it."""


Handler = Callable[[Delivery], Awaitable[None]]
"""Handles one message; raises Rejected to park it, Interrupted to hand it back, anything else to retry."""


@dataclass(frozen=True)
class Batch:
    """The valid messages of one fetch, in stream order, and how far the fetch reached."""

    deliveries: tuple[Delivery, ...]
    through: int
    """The highest stream sequence fetched, parked messages included: once the batch is handled, and on an
    ordered consumer, every message up to it is settled."""


BatchHandler = Callable[[Batch], Awaitable[Mapping[int, str]]]
"""Handles a batch all or nothing; returns the stream sequence and reason of each message it rejects
(those are parked, the others acknowledged). Raises Interrupted to hand the whole batch back; anything
else makes the consumer retry the messages one by one (each as a batch of one)."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer over one family's stream.

    Processes sharing a durable name share the work (a consumer group). A message whose handler raises
    is retried with backoff up to ``max_attempts`` deliveries, then parked; an invalid or rejected one is
    parked at once. Parked messages keep their body and headers, plus the reason, on the dead-letter
    stream.
    """

    family: Family
    durable: str
    filter_subjects: tuple[str, ...] = ()
    """Empty for the whole stream."""
    max_attempts: int = 10
    ack_wait_s: float = 30.0
    batch: int = 64
    poll_s: float = 0.5
    """How long one fetch waits; also the longest a stop request waits."""
    ordered: bool = False
    """Strictly in stream order, one batch in flight across the group: a message to retry holds back those
    after it, so "every message up to ``Batch.through`` is settled" holds, and can be a watermark."""

    @property
    def stream(self) -> StreamSpec:
        """The stream this consumer reads."""
        return STREAMS[self.family]


def _header_safe(text: str, limit: int = 2000) -> str:
    return " ".join(text.split())[:limit]


def _header_bytes(headers: dict[str, str]) -> int:
    """The size of headers on the wire (NATS/1.0 framing, as nats-py writes them)."""
    return len(b"NATS/1.0\r\n\r\n") + sum(len(f"{k}: {v}\r\n".encode()) for k, v in headers.items())


def _is_refusal(exc: Exception) -> bool:
    """Whether an error is the server refusing a connection's credentials."""
    return "authorization violation" in str(exc).lower()


async def connect_nats(
    url: str,
    *,
    name: str,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    inbox_prefix: str | None = None,
    connect_timeout_s: float = 5.0,
    initial_timeout_s: float = 15.0,
    retry_refusals: bool = False,
    on_error: Callable[[str], None] | None = None,
    on_reconnect: Callable[[], None] | None = None,
) -> NatsClient:
    """A NATS connection that reconnects forever after its first success.

    ``url`` may list several servers of a cluster, comma-separated. ``user`` and ``password``, or
    ``token``, authenticate; ``inbox_prefix`` is where replies come back, which a tenant's permissions
    pin to its own inbox; ``on_error`` hears every error the server sends (e.g. a permission refused).
    ``on_reconnect`` is called after each reconnect (core NATS messages sent meanwhile are lost). Raises
    PermissionError at once when NATS refuses the credentials and ConnectionError when no server answers
    within ``initial_timeout_s``.

    ``retry_refusals`` is for WI's own connections whose credential WI's own auth callout checks: there a
    refusal most likely means that the callout did not answer within nats-server's authorization timeout
    (it is still starting, slow under load, or its subscription is not yet known on every node of a
    cluster). Connecting then goes on, trying each server again after nats-py's reconnect wait and logging
    each refusal, and raises PermissionError only if NATS still refuses when ``initial_timeout_s`` ends.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + initial_timeout_s
    whom = f"user {user}" if user else "a token" if token else "no credential"
    refused = asyncio.Event()
    errors: list[Exception] = []
    initial = True  # until the first connect succeeds or is given up: later refusals are on reconnects

    async def note_error(exc: Exception) -> None:
        if on_error is not None:
            on_error(str(exc))
        errors.append(exc)
        if initial and retry_refusals and _is_refusal(exc):
            log.warning(
                "nats: %s refused %s's credentials (%s), most likely as WI's auth callout has not answered "
                "in time yet; trying again for %.1fs more",
                url,
                name,
                whom,
                max(deadline - loop.time(), 0.0),
            )
            return
        log.warning("nats: %s", exc)
        if initial and _is_refusal(exc):
            refused.set()

    async def on_disconnect() -> None:
        if not (nc.is_draining or nc.is_closed):
            log.warning("nats: %s disconnected from %s", name, url)

    async def reconnected() -> None:
        log.info("nats: %s reconnected to %s", name, url)
        if on_reconnect is not None:
            on_reconnect()

    options: dict[str, Any] = {
        "servers": [server.strip() for server in url.split(",") if server.strip()],
        "name": name,
        "connect_timeout": connect_timeout_s,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": note_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": reconnected,
    }
    if user is not None:
        options["user"], options["password"] = user, password
    if token is not None:
        options["token"] = token
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix.encode()
    nc = NatsClient()
    connecting = asyncio.create_task(nc.connect(**options))
    refusal = asyncio.create_task(refused.wait())
    await asyncio.wait({connecting, refusal}, timeout=initial_timeout_s, return_when=asyncio.FIRST_COMPLETED)
    initial = False
    refusal.cancel()
    if connecting.done():
        connecting.result()
        return nc
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    if refused.is_set():
        raise PermissionError(f"NATS at {url} refused the credentials ({whom})")
    if refusals := sum(map(_is_refusal, errors)):
        raise PermissionError(
            f"NATS at {url} refused the credentials ({whom}) {refusals} time(s) in {initial_timeout_s:.0f}s"
        )
    last = f": {errors[-1]}" if errors else ""
    raise ConnectionError(f"no NATS server answered at {url} within {initial_timeout_s:.0f}s{last}")


async def close_nats(nc: NatsClient) -> None:
    """Drains a connection: pending publishes and acks are flushed before it closes.

    If the server is already gone there is nothing to flush to, and the connection is just closed.
    """
    if nc.is_closed:
        return
    try:
        await nc.drain()
    except (
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionClosedError,
        TimeoutError,
    ) as exc:
        log.warning("nats: could not drain (%s); closing", type(exc).__name__)
        with contextlib.suppress(OSError):  # nats-py may fail to close a socket the server reset
            await nc.close()


def _note_refusal(awaited: dict[str, asyncio.Event], error: str) -> None:
    """Sets the event of a subject being checked when the server refuses this connection its use."""
    found = _PERMISSIONS_VIOLATION.search(error)
    if found is not None and (refused := awaited.get(found.group(1).lower())):
        refused.set()


class Bus:
    """A connection to the WI bus on NATS JetStream."""

    def __init__(self, nc: NatsClient, source: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.source = source
        self._refusals_awaited: dict[str, asyncio.Event] = {}
        """Subjects being checked, lowercased as the server's errors name them: set when refused."""
        self._reconnect_listeners: list[Callable[[], None]] = []

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        source: str,
        name: str | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        inbox_prefix: str | None = None,
        connect_timeout_s: float = 5.0,
        initial_timeout_s: float = 15.0,
        retry_refusals: bool = False,
    ) -> Bus:
        """Connects (see ``connect_nats``, which says when to ``retry_refusals``) and returns the bus.

        ``source`` becomes the ``ce-source`` of what this connection publishes; a WI token authenticates
        as ``token``, or as the ``password`` of the ``user`` named by its id.
        """
        refusals: dict[str, asyncio.Event] = {}
        listeners: list[Callable[[], None]] = []

        def reconnected() -> None:
            for listener in list(listeners):
                listener()

        nc = await connect_nats(
            url,
            name=name or source,
            user=user,
            password=password,
            token=token,
            inbox_prefix=inbox_prefix,
            connect_timeout_s=connect_timeout_s,
            initial_timeout_s=initial_timeout_s,
            retry_refusals=retry_refusals,
            on_error=lambda text: _note_refusal(refusals, text),
            on_reconnect=reconnected,
        )
        bus = cls(nc, source)
        bus._refusals_awaited = refusals
        bus._reconnect_listeners = listeners
        return bus

    def on_reconnect(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Calls ``listener`` after each reconnect of a bus made by ``connect``; returns what removes it."""
        self._reconnect_listeners.append(listener)
        return lambda: self._reconnect_listeners.remove(listener)

    async def check_subscribe(self, subject: str) -> None:
        """Raises PermissionError if the server does not let this connection subscribe to ``subject``.

        Subscribes and unsubscribes at once. The server answers a refused subscription before the PONG of
        the flush that follows it; two round trips, because nats-py may take the first PONG for the answer
        to an earlier PING (one flush missed 8 refusals in 30 here, two none).
        """
        refused = self._refusals_awaited.setdefault(subject.lower(), asyncio.Event())
        try:
            subscription = await self.nc.subscribe(subject)
            await self.nc.flush()
            await self.nc.flush()
            await subscription.unsubscribe()
        finally:
            self._refusals_awaited.pop(subject.lower(), None)
        if refused.is_set():
            raise PermissionError(f"NATS refuses this connection a subscription to {subject}")

    def cluster_size(self) -> int | None:
        """How many servers the connected cluster advertises (1 for a lone server); None if it hides them."""
        info: dict[str, Any] = self.nc._server_info  # nats-py keeps the server's INFO only here
        urls = info.get("connect_urls") or []
        if not urls:
            return None if info.get("cluster") else 1
        return len(set(urls))

    async def ensure_streams(self, duplicate_window_s: float = 120.0, replicas: int | None = None) -> None:
        """Creates the bus's streams, or updates them to this configuration; safe to call at every start.

        ``replicas`` None never changes an existing stream's replicas and creates new streams with one
        replica per server of the cluster, up to ``MAX_REPLICAS``; a stream whose replicas differ from
        that is reported. An explicit ``replicas`` is applied (raised or lowered) with a warning.
        """
        size = self.cluster_size()
        if size is None:
            log.warning("the cluster does not advertise its servers; set WI_STREAM_REPLICAS (using 1)")
        default = replicas or min(MAX_REPLICAS, size or 1)
        for spec in ALL_STREAMS:
            await self._answered(
                functools.partial(self._ensure_stream, spec, duplicate_window_s, replicas, default, size),
                f"stream {spec.name}",
            )

    async def _answered(self, request: Callable[[], Awaitable[T]], about: str) -> T:
        """Sends a JetStream API request again while JetStream does not answer, up to SETUP_TIMEOUT_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETUP_TIMEOUT_S
        while True:
            try:
                return await request()
            except nats.errors.TimeoutError:
                if loop.time() >= deadline:
                    raise
                log.info("JetStream did not answer about %s; asking again", about)

    async def _ensure_stream(
        self,
        spec: StreamSpec,
        duplicate_window_s: float,
        replicas: int | None,
        default: int,
        size: int | None,
    ) -> None:
        """Creates one stream, or updates it (its replicas only as ``ensure_streams`` says)."""
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            storage=StorageType.FILE,
            duplicate_window=max(duplicate_window_s, spec.duplicate_window_s),
            max_age=spec.max_age_s,
            max_msgs=spec.max_msgs,
            max_bytes=spec.max_bytes,
            discard=DiscardPolicy.OLD,
            num_replicas=default,
        )
        if spec.republish_root is not None:
            [root] = spec.subjects  # <root>.> : every subject keeps its tokens under the new root
            config.republish = RePublish(src=root, dest=f"{spec.republish_root}.>")
        try:
            info = await self.js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(config)
            log.info("created stream %s (%s), %d replica(s)", spec.name, ", ".join(spec.subjects), default)
            return
        current = info.config.num_replicas or 1
        if replicas is None:
            config.num_replicas = current
            if current != default:
                log.warning(
                    "stream %s keeps its %d replica(s) though the cluster has %s server(s); set "
                    "WI_STREAM_REPLICAS to change it",
                    spec.name,
                    current,
                    size or "an unknown number of",
                )
        elif replicas != current:
            log.warning(
                "stream %s: %d -> %d replica(s), as WI_STREAM_REPLICAS says", spec.name, current, replicas
            )
        await self.js.update_stream(config)

    async def publish(
        self, message: Message, *, source: str | None = None, timeout_s: float = 10.0
    ) -> Published:
        """Publishes a message as a CloudEvent and waits until JetStream has stored it.

        Retries within ``timeout_s`` when a reconnect or a recovering server swallows the request: the
        message id makes a retry safe, as JetStream stores a repeated id once.
        """
        subject = subject_for(message)
        with tracer.start_as_current_span(f"publish {message.ce_type}", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.destination.name", subject)
            span.set_attribute("messaging.message.id", message.message_id)
            headers, body = encode(message, source or self.source)
            return await self.publish_raw(subject, body, headers, timeout_s=timeout_s)

    async def publish_raw(
        self, subject: str, body: bytes, headers: dict[str, str], *, timeout_s: float = 10.0
    ) -> Published:
        """Publishes bytes as they are (to relay validated input, or in tests), retrying like ``publish``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            attempt_s = min(PUBLISH_ATTEMPT_S, max(deadline - loop.time(), 0.05))
            try:
                ack = await self.js.publish(subject, body, headers=headers, timeout=attempt_s)
                return Published(ack.stream, ack.seq, bool(ack.duplicate))
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError) as exc:
                if loop.time() >= deadline:
                    raise TimeoutError(f"JetStream did not store {subject} within {timeout_s:.1f}s") from exc
                log.info("publish to %s unanswered (%s); retrying", subject, type(exc).__name__)
                await asyncio.sleep(0.1)

    async def ensure_consumer(self, spec: ConsumerSpec) -> None:
        """Creates the durable consumer, or updates it to this configuration."""
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_s,
            max_ack_pending=spec.batch if spec.ordered else max(1000, spec.batch),
        )
        if len(spec.filter_subjects) == 1:
            config.filter_subject = spec.filter_subjects[0]
        elif spec.filter_subjects:
            config.filter_subjects = list(spec.filter_subjects)
        await self._answered(
            lambda: self.js.add_consumer(spec.stream.name, config), f"consumer {spec.durable}"
        )

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        """Creates (or updates) the durable consumer and binds to it; ``run`` it to handle messages."""
        await self.ensure_consumer(spec)
        subscription = await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream.name)
        return Consumer(self, spec, subscription)

    async def consume(self, spec: ConsumerSpec, handler: Handler, stop: asyncio.Event) -> None:
        """Sets up the consumer and runs ``handler`` on its messages until ``stop`` is set."""
        await (await self.consumer(spec)).run(handler, stop)

    async def consume_batches(self, spec: ConsumerSpec, handler: BatchHandler, stop: asyncio.Event) -> None:
        """Sets up the consumer and runs ``handler`` on each fetched batch until ``stop`` is set."""
        await (await self.consumer(spec)).run_batches(handler, stop)

    async def close(self) -> None:
        """Drains the connection (see ``close_nats``)."""
        await close_nats(self.nc)


class Consumer:
    """A bound durable consumer; ``run`` handles its messages."""

    def __init__(self, bus: Bus, spec: ConsumerSpec, subscription: JetStreamContext.PullSubscription) -> None:
        self.bus = bus
        self.spec = spec
        self.subscription = subscription

    async def run(self, handler: Handler, stop: asyncio.Event) -> None:
        """Runs ``handler`` on every message, one at a time, until ``stop`` is set.

        Each message is acknowledged once handled, parked if the handler raises Rejected, retried with
        backoff if it raises anything else (parked after ``max_attempts``). Messages that break the
        contract are parked before. A stop lets the message in hand finish (or ``Interrupted`` hands it
        back) and releases the rest of the fetch for redelivery at once, so nothing acknowledged is lost,
        nothing handled is left unacknowledged, and no process sits on work it will not do.
        """

        async def one_by_one(batch: list[tuple[Msg, Delivery]], through: int) -> bool:
            return await self._one_by_one(batch, handler, stop)

        await self._loop(one_by_one, stop)

    async def run_batches(self, handler: BatchHandler, stop: asyncio.Event) -> None:
        """Runs ``handler`` on each fetched batch until ``stop`` is set.

        Messages that break the contract are parked before the handler sees the batch. A batch the handler
        finishes is acknowledged (its rejections parked); a batch it fails is retried message by message,
        each then retried with backoff and parked after ``max_attempts``, so one poisoned message cannot
        hold the others back. ``Interrupted`` hands the batch back for redelivery at once.
        """

        async def whole(batch: list[tuple[Msg, Delivery]], through: int) -> bool:
            return await self._whole(batch, through, handler, stop)

        await self._loop(whole, stop)

    async def _loop(
        self, settle: Callable[[list[tuple[Msg, Delivery]], int], Awaitable[bool]], stop: asyncio.Event
    ) -> None:
        """Fetches until ``stop``; parks what breaks the contract and hands the rest to ``settle``, which
        returns False once it was interrupted."""
        spec = self.spec
        log.info("consuming %s as %s", spec.stream.name, spec.durable)
        try:
            while not stop.is_set():
                msgs = await self._fetch()
                batch = [pair for msg in msgs if (pair := await self._decoded(msg)) is not None]
                try:
                    if stop.is_set():
                        await self._release([msg for msg, _ in batch])
                        return
                    through = max((msg.metadata.sequence.stream for msg in msgs), default=0)
                    if msgs and not await settle(batch, through):
                        return
                finally:
                    for _, delivery in batch:
                        trace.get_current_span(delivery.trace_context).end()
        finally:
            if not self.bus.nc.is_closed:
                await self.subscription.unsubscribe()

    async def _fetch(self) -> list[Msg]:
        """The next fetch (nothing after ``poll_s``); raises after FETCH_FAILURES_BEFORE_RESTART failures."""
        spec = self.spec
        for failures in range(1, FETCH_FAILURES_BEFORE_RESTART + 1):
            try:
                return await self.subscription.fetch(spec.batch, timeout=spec.poll_s)
            except TimeoutError:  # nothing to fetch (nats-py raises either its own or asyncio's)
                return []
            except (
                nats.errors.ConnectionClosedError,
                nats.errors.ConnectionReconnectingError,
                nats.errors.NoRespondersError,
                nats.js.errors.APIError,
            ) as exc:
                if failures == FETCH_FAILURES_BEFORE_RESTART:  # the durable may be gone: set it up anew
                    raise ConnectionError(
                        f"{spec.durable}: {failures} fetches failed, last: {exc!r}"
                    ) from exc
                log.warning("%s: fetch failed (%s); retrying", spec.durable, exc)
                await asyncio.sleep(spec.poll_s)
        raise AssertionError("unreachable")

    async def _decoded(self, msg: Msg) -> tuple[Msg, Delivery] | None:
        """The message as a Delivery, or None once it is parked for breaking the contract."""
        spec = self.spec
        meta = msg.metadata
        try:
            message, event = decode(spec.family, msg.subject, msg.headers, msg.data, meta.timestamp)
        except InvalidMessage as exc:
            await self._park(msg, f"invalid: {exc}", once=True)
            return None
        except Exception as exc:  # whatever the bytes hold, they never end the consumer
            log.exception("%s: could not decode %s", spec.durable, msg.subject)
            await self._park(msg, f"undecodable: {type(exc).__name__}: {exc}", once=True)
            return None
        span = tracer.start_span(
            f"consume {message.ce_type}",
            context=propagate.extract(msg.headers or {}),
            kind=trace.SpanKind.CONSUMER,
        )
        span.set_attribute("messaging.consumer.group.name", spec.durable)
        span.set_attribute("messaging.message.id", message.message_id)
        delivery = Delivery(
            message,
            event,
            msg.subject,
            meta.sequence.stream,
            meta.timestamp,
            meta.num_delivered or 1,
            trace.set_span_in_context(span),
        )
        return msg, delivery

    async def _whole(
        self, batch: list[tuple[Msg, Delivery]], through: int, handler: BatchHandler, stop: asyncio.Event
    ) -> bool:
        try:
            rejected = await handler(Batch(tuple(delivery for _, delivery in batch), through))
        except Interrupted:
            await self._release([msg for msg, _ in batch])
            return False
        except Exception as exc:
            if not batch:  # only parked messages: nothing to retry, the next batch reaches further
                log.warning("%s: could not note progress to #%d: %r", self.spec.durable, through, exc)
                return True
            if len(batch) == 1:
                await self._failed(*batch[0], exc)
                return True
            log.warning("%s: a batch of %d failed (%r); one by one now", self.spec.durable, len(batch), exc)

            async def alone(delivery: Delivery) -> None:
                if reason := (await handler(Batch((delivery,), delivery.stream_seq))).get(
                    delivery.stream_seq
                ):
                    raise Rejected(reason) from None

            return await self._one_by_one(batch, alone, stop)
        for msg, delivery in batch:
            if delivery.stream_seq in rejected:
                await self._park(msg, f"rejected: {rejected[delivery.stream_seq]}")
            else:
                await msg.ack()
        return True

    async def _one_by_one(
        self, batch: list[tuple[Msg, Delivery]], handler: Handler, stop: asyncio.Event
    ) -> bool:
        for index, (msg, delivery) in enumerate(batch):
            if stop.is_set():
                await self._release([m for m, _ in batch[index:]])
                return False
            try:
                with trace.use_span(trace.get_current_span(delivery.trace_context), end_on_exit=False):
                    await handler(delivery)
            except Interrupted:
                await self._release([m for m, _ in batch[index:]])
                return False
            except Exception as exc:
                await self._failed(msg, delivery, exc)
            else:
                await msg.ack()
        return True

    async def _failed(self, msg: Msg, delivery: Delivery, exc: Exception) -> None:
        """Settles a message whose handling raised: parked if rejected or out of attempts, else retried."""
        spec = self.spec
        attempt = delivery.attempt
        if isinstance(exc, Rejected | InvalidMessage):
            await self._park(msg, f"rejected: {exc}")
        elif attempt >= spec.max_attempts:
            log.error("%s: giving up on %s after %d attempts: %r", spec.durable, msg.subject, attempt, exc)
            await self._park(msg, f"failed {attempt} times, last: {exc!r}")
        else:
            delay = min(0.1 * 2**attempt, 30.0)
            log.warning(
                "%s: %s failed (attempt %d, retry in %.1fs): %r",
                spec.durable,
                msg.subject,
                attempt,
                delay,
                exc,
            )
            await msg.nak(delay=delay)

    async def _release(self, msgs: list[Msg]) -> None:
        """Hands fetched messages back for redelivery now (to this or another process of the group)."""
        for msg in msgs:
            await msg.nak()
        if msgs:
            log.info("%s: stopping; released %d fetched message(s)", self.spec.durable, len(msgs))

    async def _park(self, msg: Msg, reason: str, *, once: bool = False) -> None:
        """Moves a message to the dead-letter stream with its reason; acks it only once it is parked.

        ``once``: the message itself is at fault (it breaks the contract), so every consumer of its stream
        parks it under the same id and JetStream keeps one copy; a handler's failure is parked per consumer.
        """
        spec = self.spec
        seq = msg.metadata.sequence.stream
        stream = spec.stream.name
        headers = dict(msg.headers or {})
        headers.update(
            {
                "Nats-Msg-Id": f"invalid:{stream}:{seq}" if once else f"{spec.durable}:{stream}:{seq}",
                DEADLETTER_REASON: _header_safe(reason),
                DEADLETTER_SUBJECT: msg.subject,
                DEADLETTER_STREAM_SEQ: str(seq),
                DEADLETTER_CONSUMER: spec.durable,
            }
        )
        # Headers and body must fit the server's max_payload together: a publish past it makes nats-server
        # close the connection, and nats-py does not reconnect after that. An original filling the limit
        # is parked cut short, saying how long it was (it stays whole in its own stream).
        room = self.bus.nc.max_payload - _header_bytes(headers) - 512
        body = msg.data
        if len(body) > room:
            headers[DEADLETTER_TRUNCATED] = str(len(body))
            body = body[: max(room, 0)]
        try:
            await self.bus.js.publish(deadletter_subject(stream), body, headers=headers)
        except Exception:
            log.exception("%s: could not park %s #%d; it will be redelivered", spec.durable, stream, seq)
            await msg.nak(delay=5.0)
            return
        log.warning("%s: parked %s #%d (%s): %s", spec.durable, stream, seq, msg.subject, reason)
        await msg.ack()
