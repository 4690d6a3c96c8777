"""The agent: a WorkloadClient for one instance's notices, and the HTTP server that serves them in each
cloud's format."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Generator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from wi.contract import CostOffer, Eviction, Maintenance, Placement, PowerEvent, Reconfiguration, Resize

from .._client import Received, WorkloadClient
from .._nats import NatsTransport
from .._transport import Transport
from ._aws import aws_routes
from ._azure import azure_routes
from ._gce import gce_routes
from ._notices import InstanceNotices

log = logging.getLogger("wi_sdk.imds")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8169
"""An unprivileged port; the README shows how to reach the agent at 169.254.169.254:80."""
WI_ONLY = (PowerEvent, Resize, CostOffer, Reconfiguration, Placement)
"""Notices no cloud's metadata service has a format for: the workload reads and answers them through the
SDK."""
SHUTDOWN_GRACE_S = 1
"""How long requests in flight may take to finish once the agent stops (long polls return at once)."""


class _QuietUvicorn(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to whoever runs the agent."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ImdsAgent:
    """Serves one instance's WI notices as AWS's, Azure's and GCE's metadata services do.

    ``async with ImdsAgent(tenant=..., workload=..., instance=..., url=..., token=...) as agent:`` connects
    to WI (``url`` as for ``WorkloadClient``), then serves on ``host:port`` (port 0: any free port; see
    ``agent.url``). IMDSv1 (AWS reads without a session token) is refused unless ``imdsv1``. It reads every
    notice of the workload, beside the workload's own clients and the agents of its other instances, and
    serves those of its instance.
    """

    def __init__(
        self,
        *,
        tenant: str,
        workload: str,
        instance: str,
        url: str,
        token: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        imdsv1: bool = False,
        transport: Transport | None = None,
    ) -> None:
        self.instance = instance
        if transport is None and url.startswith(("nats://", "tls://")):  # not in the workload's queue group:
            transport = NatsTransport(url, tenant, workload, token, share_notices=False)  # every notice
        self.client = WorkloadClient(
            tenant=tenant, workload=workload, url=url, token=token, instance=instance, transport=transport
        )
        self.client.on(Eviction)(self._hold_eviction)
        self.client.on(Maintenance)(self._hold_maintenance)
        for kind in WI_ONLY:
            self.client.on(kind)(self._leave_to_the_sdk)
        self.notices = InstanceNotices(instance)
        self.app = Starlette(
            routes=[*aws_routes(self.notices, imdsv1), *azure_routes(self.notices), *gce_routes(self.notices)]
        )
        self.host, self.port = host, port
        self._server: _QuietUvicorn | None = None
        self._serving: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL the agent serves on, once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> ImdsAgent:
        """Connects to WI (failing as ``WorkloadClient`` does for a bad token), then starts serving."""
        await self.client.__aenter__()
        try:
            self.client.start()
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self._socket = socket.create_server((self.host, self.port), family=family)
            self.host, self.port = self._socket.getsockname()[:2]
            config = uvicorn.Config(
                self.app,
                lifespan="off",
                log_level="warning",
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            )
            self._server = _QuietUvicorn(config)
            self._serving = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="wi-imds")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Answers the readers waiting for a change, stops serving and disconnects from WI."""
        self.notices.close()
        try:
            if self._server is not None and self._serving is not None:
                self._server.should_exit = True
                await self._serving
        finally:
            if self._socket is not None:
                self._socket.close()
            await self.client.close()

    def _mine(self, received: Received[Eviction] | Received[Maintenance]) -> bool:
        notice = received.notice
        if notice.instance == self.instance:
            log.info("%s %s: not before %s", notice.kind, notice.notice_id, notice.not_before.isoformat())
            return True
        log.debug("%s %s is for instance %s, not this one", notice.kind, notice.notice_id, notice.instance)
        return False

    async def _hold_eviction(self, received: Received[Eviction]) -> None:
        if self._mine(received):
            self.notices.add_eviction(received)

    async def _hold_maintenance(self, received: Received[Maintenance]) -> None:
        if self._mine(received):
            self.notices.add_maintenance(received)

    async def _leave_to_the_sdk(self, received: Received[Any]) -> None:
        notice = received.notice
        log.info(
            "%s %s: WI-only, no cloud format carries it; read and answer it with the SDK",
            notice.kind,
            notice.notice_id,
        )
