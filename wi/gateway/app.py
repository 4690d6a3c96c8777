"""The gateway application: tenant and platform routes, operations endpoints, errors and limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from wi import __version__
from wi.auth.store import TokenStore
from wi.bus import ALL_STREAMS, Bus
from wi.registry import RegistryStore

from . import problems
from .limits import BodyLimit
from .routes import platform_router, tenant_router

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_LONG_POLL_MAX_S = 30.0
tracer = trace.get_tracer("wi.gateway")


class Metrics:
    """What /metrics reports, in a registry of the app's own (so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wi_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "wi_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.stream_messages = Gauge(
            "wi_stream_messages", "Messages held by each JetStream stream", ["stream"], registry=self.registry
        )


def create_app(
    bus: Bus,
    store: RegistryStore,
    tokens: TokenStore,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    long_poll_max_s: float = DEFAULT_LONG_POLL_MAX_S,
) -> FastAPI:
    """The FastAPI application that ``wi up`` serves."""
    app = FastAPI(
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
    metrics = Metrics()
    problems.install(app)
    app.include_router(tenant_router)
    app.include_router(platform_router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"{request.method} {request.url.path}",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
        ) as span:
            response = await call_next(request)
            span.set_attribute("http.response.status_code", response.status_code)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

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

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics_endpoint() -> Response:
        """Prometheus text format: HTTP requests and latency, messages per stream."""
        for spec in ALL_STREAMS:
            try:
                info = await bus.js.stream_info(spec.name)
            except Exception:
                continue
            metrics.stream_messages.labels(spec.name).set(info.state.messages)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
