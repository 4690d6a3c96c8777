"""Core NATS request/reply answered a batch at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger("wi.bus")

RequestsHandler = Callable[[list[Msg]], Awaitable[None]]
"""Answers every request of a batch (``msg.respond``), doing its I/O once for the batch."""


class BatchedResponder:
    """Answers the requests on a subject a batch at a time, in arrival order.

    nats-py runs a subscription's callback for one message after another, so a responder that awaits I/O
    per request answers one request per round trip: ten thousand workloads attaching at once waited in
    line and timed out. Here the callback only queues; one task hands everything queued by then (up to
    ``max_batch``) to the handler. A handler that fails is logged and its batch goes unanswered (the
    requesters time out and ask again); the next batch is served.
    """

    def __init__(self, name: str, handler: RequestsHandler, max_batch: int) -> None:
        self.name = name
        self.handler = handler
        self.max_batch = max_batch
        self._queued: asyncio.Queue[Msg | None] = asyncio.Queue()
        self._subscription: Subscription | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self, nc: NatsClient, subject: str, queue: str) -> None:
        """Subscribes (in the queue group, so responders in several processes share the requests) and
        starts serving."""
        self._serving = asyncio.create_task(self._serve(), name=f"{self.name} responder")
        self._subscription = await nc.subscribe(subject, queue=queue, cb=self._queue)

    async def stop(self, nc: NatsClient) -> None:
        """Unsubscribes, answers what was queued, and stops."""
        if self._subscription is not None and not nc.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None
        if self._serving is not None:
            self._queued.put_nowait(None)
            await self._serving
            self._serving = None

    async def _queue(self, msg: Msg) -> None:
        if msg.reply:  # a request without a reply subject cannot be answered
            self._queued.put_nowait(msg)

    async def _serve(self) -> None:
        while (first := await self._queued.get()) is not None:
            batch = [first]
            while len(batch) < self.max_batch and not self._queued.empty():
                if (msg := self._queued.get_nowait()) is None:
                    self._queued.put_nowait(None)  # stop after this batch
                    break
                batch.append(msg)
            try:
                await self.handler(batch)
            except Exception:
                log.exception("%s: %d request(s) unanswered; they will ask again", self.name, len(batch))
