"""The HTTP server of ``wi up``: operations endpoints now; the gateway's routes join it later."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from wi import __version__
from wi.bus import Bus
from wi.registry import RegistryStore


def create_app(bus: Bus, store: RegistryStore) -> FastAPI:
    """The FastAPI application served by ``wi up``."""
    app = FastAPI(title="Workload Intelligence", version=__version__)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "NATS or the database is down"}})
    async def readyz() -> JSONResponse:
        """Readiness: NATS and the database are reachable."""
        checks = {"nats": "ok" if bus.nc.is_connected else "disconnected", "database": "ok"}
        try:
            await asyncio.to_thread(store.ping)
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    return app


class _EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to ``wi up``, which drains everything in order."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Serves an app on a socket bound up front, so the real port is known before serving (port 0)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.socket = socket.create_server((host, port), reuse_port=False)
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

    async def stop(self) -> None:
        """Finishes the requests in flight and stops."""
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.socket.close()
