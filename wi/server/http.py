"""Serves the gateway inside ``wi up``, on a socket bound before serving so the real port is known."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


class _EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to ``wi up``, which drains everything in order."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Serves an app on a socket bound up front, so the real port is known before serving (port 0)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.socket = socket.create_server((host, port), reuse_port=False)
        # Accepted connections inherit this. asyncio sets it only on sockets made with proto=IPPROTO_TCP,
        # which create_server does not use: without it each response on a kept-alive connection waits
        # for the client's delayed ACK (about 40 ms, Nagle's algorithm).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = self.socket.getsockname()[:2]
        self.server = _EmbeddedUvicorn(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Starts serving in the background."""
        self._task = asyncio.create_task(self.server.serve(sockets=[self.socket]), name="wi-http")

    async def stop(self, grace_s: float) -> None:
        """Ends long polls and event streams, finishes the requests in flight (for at most ``grace_s``) and
        stops."""
        self.app.state.stopping.set()
        self.server.config.timeout_graceful_shutdown = max(1, round(grace_s))
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.socket.close()
