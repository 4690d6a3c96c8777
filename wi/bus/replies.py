"""Core NATS request/reply answered a batch at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger("wi.bus")

RequestsHandler = Callable[[list[Msg]], Awaitable[None]]
"""Answers every request of a batch (with ``reply``), doing its I/O once for the batch."""
MAX_QUEUED = 50_000
"""Requests a responder holds at most; beyond, new ones are dropped (their requesters time out)."""


class BatchedResponder:
    """Answers the requests on a subject a batch at a time, in arrival order.

    nats-py runs a subscription's callback for one message after another, so a responder that awaits I/O
    per request answers one request per round trip: ten thousand workloads attaching at once waited in
    line and timed out. Here the callback only queues (up to ``MAX_QUEUED``); one task hands everything
    queued by then (up to ``max_batch``) to the handler. A handler that fails is logged and its batch
    goes unanswered (the requesters time out and ask again); the next batch is served.
    """

    def __init__(self, name: str, handler: RequestsHandler, max_batch: int) -> None:
        self.name = name
        self.handler = handler
        self.max_batch = max_batch
        self._requests: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._closing = False
        self._dropped = 0
        self._subscription: Subscription | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self, nc: NatsClient, subject: str, queue: str) -> None:
        """Subscribes (in the queue group, so responders in several processes share the requests) and
        starts serving."""
        self._requests, self._arrived, self._closing = deque(), asyncio.Event(), False
        self._serving = asyncio.create_task(self._serve(), name=f"{self.name} responder")
        self._subscription = await nc.subscribe(subject, queue=queue, cb=self._enqueue)

    async def stop(self, nc: NatsClient) -> None:
        """Stops taking requests, answers those already received, and stops."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None and nc.is_connected:
            # drain: what nats-py holds for the subscription is queued too, not thrown away
            with contextlib.suppress(nats.errors.Error):  # e.g. the connection drains: nothing more comes
                await subscription.drain()  # type: ignore[no-untyped-call]
        elif subscription is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()  # no round trip to wait for while disconnected
        serving, self._serving = self._serving, None
        self._closing = True
        self._arrived.set()
        if serving is not None:
            await serving  # cancelling the stop cancels it too; ``start`` begins afresh either way

    async def _enqueue(self, msg: Msg) -> None:
        if not msg.reply:  # a request without a reply subject cannot be answered
            return
        if len(self._requests) >= MAX_QUEUED:
            self._dropped += 1
            return
        self._requests.append(msg)
        self._arrived.set()

    async def _serve(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._requests:
                batch = [self._requests.popleft() for _ in range(min(self.max_batch, len(self._requests)))]
                try:
                    await self.handler(batch)
                except Exception:
                    log.exception("%s: %d request(s) unanswered; they will ask again", self.name, len(batch))
                if self._dropped:
                    log.warning("%s: dropped %d request(s), %d queued", self.name, self._dropped, MAX_QUEUED)
                    self._dropped = 0
            if self._closing:
                return


async def reply(msg: Msg, body: bytes) -> None:
    """Replies to one request of a batch; a reply that cannot be sent (larger than the server takes, the
    connection closing) is logged, not raised, so that the rest of the batch is answered."""
    try:
        await msg.respond(body)
    except nats.errors.Error as exc:
        log.warning("could not reply on %s (%d bytes): %r", msg.subject, len(body), exc)
