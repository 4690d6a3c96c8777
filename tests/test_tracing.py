"""One trace runs from an SDK hint to the registry applying it, over either transport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from wi_sdk import Priority, WorkloadClient

from tests.platform import Running
from wi.telemetry import TelemetryError, configure_tracing


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: the API allows no second provider
    yield exporter


@pytest.mark.parametrize("transport", ["nats", "http"])
async def test_one_trace_spans_sdk_hint_to_registry_apply(
    running: Running, spans: InMemorySpanExporter, transport: str
) -> None:
    url = running.endpoints.nats_url if transport == "nats" else running.endpoints.http_url
    async with WorkloadClient(tenant="acme", workload="web", url=url, token=running.acme) as client:
        spans.clear()
        await client.hint(client.new(Priority, level="high"))
        await client.hints()  # returns once the registry applied the hint
    finished = spans.get_finished_spans()
    [sent] = [s for s in finished if s.name == "wi_sdk hint"]
    trace_id = sent.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    assert "registry apply hint" in in_trace, in_trace
    assert "consume wi.v1.hint.priority" in in_trace
    if transport == "http":
        assert "POST /v1/workloads/web/hints" in in_trace


def test_tracing_is_off_by_default_and_a_bad_exporter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert configure_tracing() == "none"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger-thrift")
    with pytest.raises(TelemetryError, match="OTEL_TRACES_EXPORTER: expected none, console or otlp"):
        configure_tracing()
