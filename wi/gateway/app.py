"""The gateway application: tenant and platform routes, operations endpoints, errors and limits."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from nats.js.api import StreamInfo
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import OperationalError

from wi import __version__
from wi.auth.status import DEGRADED
from wi.auth.store import TokenStore
from wi.bus import ALL_STREAMS, Bus
from wi.dashboard import DashboardFeed
from wi.dashboard.routes import dashboard_router
from wi.registry import Progress, RegistryStore

from . import problems
from .drills import DrillDesk
from .health import HealthSource
from .limits import BodyLimit
from .metrics import Metrics, ObserveRequests
from .openapi import with_body_schemas
from .routes import platform_router, tenant_router
from .verdicts import VerdictWatch

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_LONG_POLL_MAX_S = 30.0


class GatewayApp(FastAPI):
    """FastAPI, whose OpenAPI document also describes the bodies the routes read themselves."""

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with the request bodies' schemas from the contract (made once)."""
        if self.openapi_schema is None:
            self.openapi_schema = with_body_schemas(super().openapi())
        return self.openapi_schema


def create_app(
    bus: Bus,
    store: RegistryStore,
    tokens: TokenStore,
    health: HealthSource,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    long_poll_max_s: float = DEFAULT_LONG_POLL_MAX_S,
    progress: Progress | None = None,
    dashboard: DashboardFeed | None = None,
) -> FastAPI:
    """The FastAPI application that ``wi up`` serves; ``health`` reports the platform process's loops and
    NATS authorization, ``progress`` (the registry's, when it runs in this process) answers
    read-your-writes reads soonest, ``dashboard`` (if given) is served at /ui.

    ``app.state.followers`` are what the routes read from the bus (verdicts, drills, the dashboard's
    feed): start them before serving and stop them after."""
    app = GatewayApp(
        title="Workload Intelligence gateway",
        version=__version__,
        description="Hints in, notices out, over HTTP. Tenant routes take a tenant token; platform routes a "
        f"platform token. Bodies are limited to {max_body_bytes} bytes. Errors are RFC 9457 problem "
        "details naming each field and rule broken.",
    )
    app.state.bus = bus
    app.state.store = store
    app.state.tokens = tokens
    app.state.stopping = asyncio.Event()
    app.state.long_poll_max_s = long_poll_max_s
    app.state.progress = progress or Progress(store)
    app.state.verdicts = VerdictWatch(bus)
    app.state.drills = DrillDesk(bus, store, app.state.progress)
    app.state.followers = [app.state.verdicts, app.state.drills]
    metrics = Metrics()
    problems.install(app)

    @app.exception_handler(problems.Unavailable)
    async def _unavailable(_: Request, exc: problems.Unavailable) -> JSONResponse:
        metrics.unavailable.labels(exc.dependency).inc()
        return problems.problem_response(problems.unavailable(exc))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return await _unavailable(request, problems.Unavailable("database", type(exc.orig).__name__))

    app.include_router(tenant_router)
    app.include_router(platform_router)
    if dashboard is not None:
        app.state.dashboard = dashboard
        app.state.followers.append(dashboard)
        app.include_router(dashboard_router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    app.add_middleware(ObserveRequests, metrics=metrics)

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={503: {"description": "the NATS connection is closed for good"}},
    )
    async def healthz() -> JSONResponse:
        """Liveness: the process serves requests and its NATS connection is open or reconnecting (a closed one
        never comes back: restart the process)."""
        if bus.nc.is_closed and not app.state.stopping.is_set():
            return JSONResponse({"status": "nats connection closed"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={
            503: {
                "description": "NATS, a stream, the database, a consumer loop, NATS authorization or "
                "(from a gateway worker) the platform process is down"
            }
        },
    )
    async def readyz() -> JSONResponse:
        """Readiness: NATS, each stream, the database and every consumer loop are up, and NATS clients
        are authorized.

        ``auth`` may be ``degraded: <why>``: ready, with a gap in what WI enforces on NATS. A gateway
        worker process (``WI_HTTP_WORKERS`` > 1) reports the platform process's loops and ``auth``, or
        ``platform process`` if that did not answer.
        """
        checks = {"nats": "ok" if bus.nc.is_connected else "disconnected", "database": "ok"}
        try:
            await asyncio.to_thread(store.ping)
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        for spec in ALL_STREAMS:
            info = await _stream_info(bus, spec.name)
            checks[f"stream {spec.name}"] = "ok" if isinstance(info, StreamInfo) else info
        checks.update((await health()).checks())
        ready = all(value == "ok" or value.startswith(DEGRADED) for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics_endpoint() -> Response:
        """Prometheus text format: HTTP requests and latency, messages per stream."""
        for spec in ALL_STREAMS:
            info = await _stream_info(bus, spec.name)
            if isinstance(info, StreamInfo):
                metrics.stream_messages.labels(spec.name).set(info.state.messages)
        metrics.observe_platform(await health())
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


STREAM_CHECK_S = 2.0


async def _stream_info(bus: Bus, name: str) -> StreamInfo | str:
    """The stream's info if it answers (has a leader, on a cluster) within STREAM_CHECK_S, else why not."""
    if not bus.nc.is_connected:
        return "unknown: NATS disconnected"
    try:
        return await asyncio.wait_for(bus.js.stream_info(name), STREAM_CHECK_S)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__} {exc}".strip()[:300]
