"""Logs and tracing for ``wi up`` and its gateway workers; tracing is configured by the standard
OpenTelemetry variables and off by default.

``OTEL_TRACES_EXPORTER``: ``none`` (default), ``console``, or ``otlp`` (needs the ``otlp`` extra; the
exporter then reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` and friends). ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the service. Workloads configure OpenTelemetry themselves; the SDK
only uses the API, so its spans join whatever the workload set up.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace


def configure_logging(level: str) -> None:
    """Logs to standard error at ``level``, each line naming the process (``wi up``'s gateway workers log
    beside it)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"
    )


class TelemetryError(RuntimeError):
    """The OTEL_* variables ask for something that cannot be set up."""


def configure_tracing() -> str:
    """Installs a tracer provider as the OTEL_* variables say; returns the exporter chosen."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none"):
        return "none"
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise TelemetryError(
                "OTEL_TRACES_EXPORTER=otlp needs: pip install 'workload-intelligence[otlp]'"
            ) from exc
        exporter = OTLPSpanExporter()
    else:
        raise TelemetryError(f"OTEL_TRACES_EXPORTER: expected none, console or otlp, not {exporter_name!r}")
    os.environ.setdefault("OTEL_SERVICE_NAME", "wi")
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter_name
