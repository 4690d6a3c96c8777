"""The JetStream bus: idempotent stream setup, publishing, durable consumption with dead-lettering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from opentelemetry import propagate, trace

from wi.contract import Family, InvalidMessage, Message

from .cloudevents import CloudEvent, decode, encode
from .subjects import ALL_STREAMS, STREAMS, StreamSpec, deadletter_subject, subject_for

log = logging.getLogger("wi.bus")
tracer = trace.get_tracer("wi.bus")

DEADLETTER_REASON = "wi-deadletter-reason"
DEADLETTER_SUBJECT = "wi-deadletter-subject"
DEADLETTER_STREAM_SEQ = "wi-deadletter-stream-seq"
DEADLETTER_CONSUMER = "wi-deadletter-consumer"
PUBLISH_ATTEMPT_S = 2.0
"""How long one publish attempt waits for JetStream's answer before it is sent again."""


class Rejected(Exception):
    """A well-formed message that cannot be applied (it contradicts state); it is parked at once."""


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


Handler = Callable[[Delivery], Awaitable[None]]


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

    @property
    def stream(self) -> StreamSpec:
        """The stream this consumer reads."""
        return STREAMS[self.family]


def _header_safe(text: str, limit: int = 2000) -> str:
    return " ".join(text.split())[:limit]


class Bus:
    """A connection to the WI bus on NATS JetStream."""

    def __init__(self, nc: NatsClient, source: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.source = source

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        source: str,
        name: str | None = None,
        user: str | None = None,
        password: str | None = None,
        inbox_prefix: str | None = None,
        connect_timeout_s: float = 5.0,
        initial_timeout_s: float = 15.0,
    ) -> Bus:
        """Connects (reconnecting forever after the first success) and returns the bus.

        ``url`` may list several servers of a cluster, comma-separated. ``source`` becomes the
        ``ce-source`` of what this connection publishes. ``user`` and ``password`` authenticate (a WI
        token is the password of the user named by its id); ``inbox_prefix`` is where replies come back,
        which a tenant's permissions pin to its own inbox. Raises PermissionError at once when NATS refuses
        the credentials and ConnectionError when no server answers within ``initial_timeout_s``.
        """

        refused = asyncio.Event()
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            if not nc.is_connected and "authorization violation" in str(exc).lower():
                refused.set()
            errors.append(exc)
            log.warning("nats: %s", exc)

        async def on_disconnect() -> None:
            if not (nc.is_draining or nc.is_closed):
                log.warning("nats: disconnected from %s", url)

        async def on_reconnect() -> None:
            log.info("nats: reconnected to %s", url)

        options: dict[str, Any] = {
            "servers": [server.strip() for server in url.split(",") if server.strip()],
            "name": name or source,
            "connect_timeout": connect_timeout_s,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "error_cb": on_error,
            "disconnected_cb": on_disconnect,
            "reconnected_cb": on_reconnect,
        }
        if user is not None:
            options["user"], options["password"] = user, password
        if inbox_prefix is not None:
            options["inbox_prefix"] = inbox_prefix.encode()
        nc = NatsClient()
        connecting = asyncio.create_task(nc.connect(**options))
        refusal = asyncio.create_task(refused.wait())
        await asyncio.wait(
            {connecting, refusal}, timeout=initial_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        refusal.cancel()
        if connecting.done():
            connecting.result()
            return cls(nc, source)
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        if refused.is_set():
            raise PermissionError(f"NATS at {url} refused the credentials (user {user or 'none'})")
        last = f": {errors[-1]}" if errors else ""
        raise ConnectionError(f"no NATS server answered at {url} within {initial_timeout_s:.0f}s{last}")

    async def ensure_streams(self, duplicate_window_s: float = 120.0, replicas: int = 1) -> None:
        """Creates the bus's streams, or updates them to this configuration; safe to call at every start."""
        for spec in ALL_STREAMS:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                storage=StorageType.FILE,
                duplicate_window=duplicate_window_s,
                max_age=spec.max_age_s,
                num_replicas=replicas,
            )
            try:
                await self.js.stream_info(spec.name)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
                log.info("created stream %s (%s)", spec.name, ", ".join(spec.subjects))
            else:
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

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        """Creates (or updates) the durable consumer and binds to it; ``run`` it to handle messages."""
        config = ConsumerConfig(
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait_s,
            max_ack_pending=max(1000, spec.batch),
        )
        if len(spec.filter_subjects) == 1:
            config.filter_subject = spec.filter_subjects[0]
        elif spec.filter_subjects:
            config.filter_subjects = list(spec.filter_subjects)
        await self.js.add_consumer(spec.stream.name, config)
        subscription = await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream.name)
        return Consumer(self, spec, subscription)

    async def consume(self, spec: ConsumerSpec, handler: Handler, stop: asyncio.Event) -> None:
        """Sets up the consumer and runs ``handler`` on its messages until ``stop`` is set."""
        await (await self.consumer(spec)).run(handler, stop)

    async def close(self) -> None:
        """Drains the connection: pending publishes and acks are flushed before it closes.

        If the server is already gone there is nothing to flush to, and the connection is just closed.
        """
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except (
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionClosedError,
            TimeoutError,
        ) as exc:
            log.warning("nats: could not drain (%s); closing", type(exc).__name__)
            await self.nc.close()


class Consumer:
    """A bound durable consumer; ``run`` handles its messages."""

    def __init__(self, bus: Bus, spec: ConsumerSpec, subscription: JetStreamContext.PullSubscription) -> None:
        self.bus = bus
        self.spec = spec
        self.subscription = subscription

    async def run(self, handler: Handler, stop: asyncio.Event) -> None:
        """Runs ``handler`` on every message until ``stop`` is set.

        A stop lets the batch in hand finish (each message handled and acknowledged) and then returns, so
        nothing acknowledged is lost and nothing handled is left unacknowledged.
        """
        spec = self.spec
        log.info("consuming %s as %s", spec.stream.name, spec.durable)
        try:
            while not stop.is_set():
                try:
                    msgs = await self.subscription.fetch(spec.batch, timeout=spec.poll_s)
                except TimeoutError:  # nothing to fetch (nats-py raises either its own or asyncio's)
                    continue
                except (
                    nats.errors.ConnectionClosedError,
                    nats.errors.ConnectionReconnectingError,
                    nats.errors.NoRespondersError,
                    nats.js.errors.APIError,
                ) as exc:
                    log.warning("%s: fetch failed (%s); retrying", spec.durable, exc)
                    await asyncio.sleep(spec.poll_s)
                    continue
                for msg in msgs:
                    await self._deliver(msg, handler)
        finally:
            if not self.bus.nc.is_closed:
                await self.subscription.unsubscribe()

    async def _deliver(self, msg: Msg, handler: Handler) -> None:
        spec = self.spec
        meta = msg.metadata
        attempt = meta.num_delivered or 1
        try:
            message, event = decode(spec.family, msg.subject, msg.headers, msg.data)
        except InvalidMessage as exc:
            await self._park(msg, f"invalid: {exc}")
            return
        delivery = Delivery(message, event, msg.subject, meta.sequence.stream, meta.timestamp, attempt)
        context = propagate.extract(msg.headers or {})
        try:
            with tracer.start_as_current_span(
                f"consume {message.ce_type}", context=context, kind=trace.SpanKind.CONSUMER
            ) as span:
                span.set_attribute("messaging.consumer.group.name", spec.durable)
                span.set_attribute("messaging.message.id", message.message_id)
                await handler(delivery)
        except (Rejected, InvalidMessage) as exc:
            await self._park(msg, f"rejected: {exc}")
        except Exception as exc:
            if attempt >= spec.max_attempts:
                log.exception("%s: giving up on %s after %d attempts", spec.durable, msg.subject, attempt)
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
        else:
            await msg.ack()

    async def _park(self, msg: Msg, reason: str) -> None:
        """Moves a message to the dead-letter stream with its reason; acks it only once it is parked."""
        spec = self.spec
        seq = msg.metadata.sequence.stream
        stream = spec.stream.name
        headers = dict(msg.headers or {})
        headers.update(
            {
                "Nats-Msg-Id": f"{spec.durable}:{stream}:{seq}",
                DEADLETTER_REASON: _header_safe(reason),
                DEADLETTER_SUBJECT: msg.subject,
                DEADLETTER_STREAM_SEQ: str(seq),
                DEADLETTER_CONSUMER: spec.durable,
            }
        )
        try:
            await self.bus.js.publish(deadletter_subject(stream), msg.data, headers=headers)
        except Exception:
            log.exception("%s: could not park %s #%d; it will be redelivered", spec.durable, stream, seq)
            await msg.nak(delay=5.0)
            return
        log.warning("%s: parked %s #%d (%s): %s", spec.durable, stream, seq, msg.subject, reason)
        await msg.ack()
