"""What the gateway counts for /metrics, and the middleware that times and traces every request."""

from __future__ import annotations

import os
import time

from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wi.bus import LoopState

from .health import PlatformHealth

tracer = trace.get_tracer("wi.gateway")
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's variable: where processes serving one /metrics write their figures."""


class Metrics:
    """What /metrics reports, in a registry of the app's own (so several apps can live in one process).

    In a gateway worker (``PROMETHEUS_MULTIPROC_DIR`` set by ``wi up`` for all its workers), each worker
    writes its figures to that folder and a scrape answered by any worker reports them all: counts summed
    over the workers, past ones included, and gauges as last set.
    """

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
            "wi_stream_messages",
            "Messages held by each JetStream stream",
            ["stream"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.unavailable = Counter(
            "wi_http_unavailable",
            "Requests answered 503 because a dependency did not answer",
            ["dependency"],
            registry=self.registry,
        )
        self.platform_up = Gauge(
            "wi_platform_up",
            "1 while the platform process reports its loops (a gateway worker asks it at each scrape)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.loop_up = Gauge(
            "wi_loop_up",
            "1 while a consumer or watcher loop runs, 0 while it restarts",
            ["loop"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.loop_restarts = Gauge(
            "wi_loop_restarts",
            "How often a consumer or watcher loop was restarted",
            ["loop"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )

    def exposition(self) -> bytes:
        """The figures in Prometheus' text format: this process's, or every worker's."""
        folder = os.environ.get(MULTIPROCESS_DIR)
        if not folder:
            return generate_latest(self.registry)
        workers = CollectorRegistry()
        MultiProcessCollector(workers, folder)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(workers)

    def observe_platform(self, platform: PlatformHealth) -> None:
        """Copies the platform process's health into the gauges (at each scrape)."""
        self.platform_up.set(0 if platform.unreachable else 1)
        for health in platform.loops:
            self.loop_up.labels(health.name).set(1 if health.state is LoopState.RUNNING else 0)
            self.loop_restarts.labels(health.name).set(health.restarts)


class ObserveRequests:
    """ASGI middleware: a server span per request (continuing the caller's ``traceparent``), and its
    count and latency by method, route template and status.

    Plain ASGI rather than ``@app.middleware("http")``, whose per-request task and body copying cost
    about as much as a whole hint request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        with tracer.start_as_current_span(
            f"{method} {scope['path']}", context=propagate.extract(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_observed)
            finally:
                span.set_attribute("http.response.status_code", status)
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
