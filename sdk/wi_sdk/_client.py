"""WorkloadClient: a workload's hints out, the platform's notices in, over NATS or HTTP alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar

from opentelemetry import trace

from wi.contract import (
    Accept,
    Ack,
    ClearHint,
    Decline,
    Defer,
    DeploymentEnd,
    DeploymentRequest,
    DeploymentScale,
    DrillNoticeKind,
    DrillReport,
    DrillRequest,
    HintBase,
    HintKind,
    HintsView,
    NoticeBase,
    ResponseBase,
    TenantMessage,
    utc_now,
)

from ._errors import ConflictError, TransportError
from ._http import HttpTransport
from ._nats import NatsTransport
from ._transport import Transport

log = logging.getLogger("wi_sdk")
tracer = trace.get_tracer("wi_sdk")

N = TypeVar("N", bound=NoticeBase)
M = TypeVar("M", bound=TenantMessage)
Handler = Callable[["Received[Any]"], Awaitable[None]]

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
REMEMBERED_NOTICES = 10_000
"""How many handled notice ids a client remembers to call each handler once per notice."""


class Received(Generic[N]):
    """A notice handed to a handler, with its deadline and the ways to answer it."""

    def __init__(self, client: WorkloadClient, notice: N) -> None:
        self.client = client
        self.notice = notice

    @property
    def deadline(self) -> datetime | None:
        """When the platform acts; answer before it."""
        return self.notice.deadline

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        """Time until the deadline (negative once it passed), or None if the notice has none."""
        deadline = self.deadline
        return None if deadline is None else deadline - (now or utc_now())

    async def ack(self, reason: str | None = None) -> None:
        """Ready now: the platform may act before the deadline."""
        await self._answer(Ack, reason)

    async def accept(self, reason: str | None = None) -> None:
        """Takes a cost offer; the platform applies the hints it committed to."""
        await self._answer(Accept, reason)

    async def decline(self, reason: str | None = None) -> None:
        """Refuses a cost offer."""
        await self._answer(Decline, reason)

    async def defer(self, until: datetime, reason: str | None = None) -> None:
        """Asks the platform to wait until ``until`` (no later than the notice allows)."""
        await self._answer(Defer, reason, until=until)

    async def _answer(self, kind: type[ResponseBase], reason: str | None, **fields: Any) -> None:
        left = self.time_left()
        if left is not None and left <= timedelta(0):
            raise ConflictError(f"the deadline of notice {self.notice.notice_id} has passed")
        response = self.client.new(kind, notice_id=self.notice.notice_id, reason=reason, **fields)
        await self.client.transport.respond(response)


class WorkloadClient:
    """A workload's connection to WI. ``async with WorkloadClient(...) as client:``.

    ``url`` chooses the transport: ``nats://`` talks to the bus, ``http(s)://`` to the gateway; the API
    is the same. ``token`` is the tenant's token. ``instance`` scopes the client's hints and responses.
    """

    def __init__(
        self,
        *,
        tenant: str,
        workload: str,
        url: str,
        token: str | None = None,
        instance: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.tenant = tenant
        self.workload = workload
        self.instance = instance
        if transport is not None:
            self.transport = transport
        elif url.startswith(("nats://", "tls://")):
            self.transport = NatsTransport(url, tenant, workload, token)
        elif url.startswith(("http://", "https://")):
            self.transport = HttpTransport(url, tenant, workload, token)
        else:
            raise ValueError(f"url: expected nats://, tls://, http:// or https://, not {url!r}")
        self._handlers: dict[type[NoticeBase], Handler] = {}
        self._handled: dict[str, None] = {}
        self._last_seq: int | None = None
        self._runner: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WorkloadClient:
        """Connects; a token that cannot act for this client's tenant fails here, on either transport."""
        try:
            await self.transport.open()
        except BaseException:
            await self.transport.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops handling notices and disconnects."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        await self.transport.close()

    def new(self, model: type[M], **fields: Any) -> M:
        """A message of this workload: ``client.new(Priority, level="high")``."""
        if self.instance is not None and "instance" in model.model_fields:
            fields.setdefault("instance", self.instance)
        return model(tenant=self.tenant, workload=self.workload, **fields)

    def _own(self, message: TenantMessage) -> None:
        if (message.tenant, message.workload) != (self.tenant, self.workload):
            raise ValueError(
                f"a {message.kind} for {message.tenant}/{message.workload} is not this client's "
                f"({self.tenant}/{self.workload}); build it with client.new(...)"
            )

    async def hint(self, *hints: HintBase) -> list[str]:
        """Sends hints; returns their ids once the bus has stored them."""
        for hint in hints:
            self._own(hint)
        with tracer.start_as_current_span("wi_sdk hint", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("wi.tenant", self.tenant)
            span.set_attribute("wi.workload", self.workload)
            sent = await self.transport.send_hints(list(hints))
        self._last_seq = sent.seq
        return sent.ids

    async def clear_hint(self, kind: HintKind, instance: str | None = None) -> str:
        """Removes the effective hint of one kind (for the workload, or for one instance)."""
        fields = {} if instance is None else {"instance": instance}
        [hint_id] = await self.hint(self.new(ClearHint, hint_kind=kind, **fields))
        return hint_id

    async def hints(self) -> HintsView:
        """The effective hints, including every hint this client sent."""
        return await self.transport.hints(self._last_seq)

    async def deploy(
        self,
        *,
        deployment: str,
        instances: int,
        cores: int,
        memory_gb: float,
        gpus: int = 0,
        regions: Sequence[str] = (),
    ) -> str:
        """Requests a deployment; the platform answers with a Placement notice. Returns the request id."""
        request = self.new(
            DeploymentRequest,
            deployment=deployment,
            instances=instances,
            cores=cores,
            memory_gb=memory_gb,
            gpus=gpus,
            regions=list(regions),
        )
        sent = await self.transport.send_deployment(request)
        return sent.ids[0]

    async def scale(self, deployment: str, instances: int) -> str:
        """Asks for ``instances`` instances of a deployment: more are placed (a Placement notice says
        where) or the newest are released. Returns the request id."""
        sent = await self.transport.send_deployment(
            self.new(DeploymentScale, deployment=deployment, instances=instances)
        )
        return sent.ids[0]

    async def end_deployment(self, deployment: str) -> str:
        """Ends a deployment: every instance it runs is released. Returns the request id."""
        sent = await self.transport.send_deployment(self.new(DeploymentEnd, deployment=deployment))
        return sent.ids[0]

    async def drill(
        self, notice_kind: DrillNoticeKind = "eviction", notice_s: int = 120, target: str = "drill"
    ) -> DrillReport:
        """Sends this workload a test notice, marked as a drill (no platform service acts on it), whose
        deadline is ``notice_s`` from now and which names ``target`` (an instance, or for a power_event a
        power domain). Returns the report so far; read it on with ``drill_report``."""
        request = DrillRequest(notice_kind=notice_kind, notice_s=notice_s, target=target)
        return await self.transport.drill(request)

    async def drill_report(self, drill_id: str) -> DrillReport:
        """A drill's report: when the notice was delivered, how and when this workload answered it."""
        return await self.transport.drill_report(drill_id)

    def on(self, kind: type[N]) -> Callable[[Callable[[Received[N]], Awaitable[None]]], Handler]:
        """Registers the decorated coroutine as the handler of one notice type: ``@client.on(Eviction)``."""

        def register(handler: Callable[[Received[N]], Awaitable[None]]) -> Handler:
            self._handlers[kind] = handler
            return handler

        return register

    def start(self) -> asyncio.Task[None]:
        """Runs the handlers in a background task (stopped by ``close``)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self.run(), name=f"wi-sdk {self.tenant}/{self.workload}")
        return self._runner

    async def run(self) -> None:
        """Hands each notice to its handler once; reconnects with backoff whenever the platform is away."""
        backoff = RECONNECT_FIRST_S
        while True:
            try:
                async for notice in self.transport.notices():
                    backoff = RECONNECT_FIRST_S
                    await self._dispatch(notice)
            except TransportError as exc:
                log.warning("notices: %s; retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    async def _dispatch(self, notice: NoticeBase) -> None:
        if notice.notice_id in self._handled:
            return
        self._handled[notice.notice_id] = None
        if len(self._handled) > REMEMBERED_NOTICES:
            del self._handled[next(iter(self._handled))]
        handler = self._handlers.get(type(notice))
        if handler is None:
            log.info("no handler for %s notice %s", notice.kind, notice.notice_id)
            return
        with tracer.start_as_current_span(f"wi_sdk handle {notice.kind}") as span:
            span.set_attribute("wi.notice_id", notice.notice_id)
            try:
                await handler(Received(self, notice))
            except Exception:
                log.exception(
                    "the %s handler failed on notice %s; it stays pending", notice.kind, notice.notice_id
                )
