"""Serves the gateway with uvicorn, on a socket bound before serving so the real port is known."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import Protocol

import uvicorn
from fastapi import FastAPI


def bind_http(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket for HTTP (port 0 picks a free one)."""
    listening = socket.create_server((host, port), reuse_port=reuse_port)
    # Accepted connections inherit this. asyncio sets it only on sockets made with proto=IPPROTO_TCP,
    # which create_server does not use: without it each response on a kept-alive connection waits
    # for the client's delayed ACK (about 40 ms, Nagle's algorithm).
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


def bind_http_group(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port, one per serving process: with SO_REUSEPORT the kernel
    spreads new connections evenly among them (processes accepting on one shared socket do not share:
    uvloop accepts until none is left, so a burst lands on one). Fails as one bind would when something
    else listens on the port, even another group."""
    if port:
        bind_http(host, port).close()
    group = [bind_http(host, port, reuse_port=True)]
    try:
        while len(group) < count:
            group.append(bind_http(host, group[0].getsockname()[1], reuse_port=True))
    except OSError:
        for listening in group:
            listening.close()
        raise
    return group


def http_url(listening: socket.socket) -> str:
    """The base URL of a listening socket."""
    host, port = listening.getsockname()[:2]
    return f"http://{host}:{port}"


class _EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to its process's owner, which drains everything in
    order."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Follower(Protocol):
    """Something that follows the bus for the routes (``create_app``'s ``app.state.followers``)."""

    async def start(self) -> None:
        """Starts following."""

    async def stop(self) -> None:
        """Stops following."""


class HttpServer:
    """Serves an app on a listening socket (``bind_http``'s) as production uvicorn does (httptools' HTTP
    parser, no access log), its followers started before and stopped after; ``stop`` closes this
    process's handle of the socket."""

    def __init__(self, app: FastAPI, listening: socket.socket, followers: Sequence[Follower] = ()) -> None:
        self.app = app
        self.socket = listening
        self.followers = followers
        self.server = _EmbeddedUvicorn(
            uvicorn.Config(app, http="httptools", log_level="warning", lifespan="off", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the followers, then serves in the background; returns once uvicorn serves (raises what
        stopped it if it could not)."""
        for follower in self.followers:
            await follower.start()
        self._task = asyncio.create_task(self.server.serve(sockets=[self.socket]), name="wi-http")
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped before it served")
            await asyncio.sleep(0.01)

    async def stop(self, grace_s: float) -> None:
        """Ends long polls and event streams, finishes the requests in flight (for at most ``grace_s``) and
        stops."""
        self.app.state.stopping.set()
        self.server.config.timeout_graceful_shutdown = max(1, round(grace_s))
        self.server.should_exit = True
        try:
            if self._task is not None:
                await self._task
        finally:
            for follower in self.followers:
                await follower.stop()
