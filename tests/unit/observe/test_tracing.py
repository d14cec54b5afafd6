"""Spans for traced events: in the event's own trace when the SDK is asked for, and no SDK at
all when it is not."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.observe.tracing import ENDPOINT, OtelTracing, tracing_from_environment

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
PARENT_ID = int("00f067aa0ba902b7", 16)


@pytest.fixture
def exported() -> tuple[OtelTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracing(provider), exporter


def test_a_consumed_event_gets_a_consume_span_in_its_trace_with_a_decide_child(
    exported: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported

    tracing.consumed([TRACE], fetched=1_000, decided=2_000, committed=3_000)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    consume, decide = spans["consume"], spans["decide"]
    assert {consume.context.trace_id, decide.context.trace_id} == {TRACE_ID}
    assert consume.parent is not None and consume.parent.span_id == PARENT_ID
    assert decide.parent is not None and decide.parent.span_id == consume.context.span_id
    assert (consume.start_time, decide.end_time, consume.end_time) == (1_000, 2_000, 3_000)


def test_a_published_output_gets_a_publish_span_in_its_input_s_trace(
    exported: tuple[OtelTracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported

    tracing.published([TRACE, TRACE], sent=5_000, acknowledged=6_000)

    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["publish", "publish"]
    assert all(span.context.trace_id == TRACE_ID for span in spans)
    assert all(span.parent is not None and span.parent.span_id == PARENT_ID for span in spans)


def test_without_an_otlp_endpoint_nothing_is_traced_and_the_sdk_is_never_imported() -> None:
    code = (
        "import sys; import service.bootstrap.service, service.adapters.kafka.consumer\n"
        "from service.observe.tracing import tracing_from_environment, NO_TRACING\n"
        "assert tracing_from_environment('s', 'v') is NO_TRACING\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {"PATH": "/usr/bin:/bin"}
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_with_an_otlp_endpoint_spans_are_exported_by_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENDPOINT, "http://127.0.0.1:9")

    tracing = tracing_from_environment("session-fulfillment", "0.1.0")
    try:
        assert isinstance(tracing, OtelTracing)
    finally:
        tracing.shutdown()
