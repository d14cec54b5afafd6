"""Spans for traced events, exported by the OpenTelemetry SDK only when it is asked for.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set (and the `otel` extra installed), each input event that
came with a traceparent gets a `consume` span (its batch in hand to offsets committed) with a
`decide` child (decoding and deciding, to the decision's commit), and each output row that
carries one a `publish` span (sent to acknowledged), all in the event's trace. The SDK reads
the other `OTEL_*` variables itself.

Without the variable the loops hold `NO_TRACING`, which does nothing, and the SDK is never
imported: nothing is exported and the hot path is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Protocol

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


class TracingUnavailable(Exception):
    """Tracing was asked for but the OpenTelemetry SDK is not installed."""


class Tracing(Protocol):
    def consumed(
        self, traceparents: Iterable[str], *, fetched: int, decided: int, committed: int
    ) -> None:
        """Times are `time.time_ns()` values: the batch in hand, its decisions' commit, the
        offsets' commit."""
        ...

    def published(self, traceparents: Iterable[str], *, sent: int, acknowledged: int) -> None: ...

    def shutdown(self) -> None: ...


class _NoTracing:
    def consumed(
        self, traceparents: Iterable[str], *, fetched: int, decided: int, committed: int
    ) -> None:
        pass

    def published(self, traceparents: Iterable[str], *, sent: int, acknowledged: int) -> None:
        pass

    def shutdown(self) -> None:
        pass


NO_TRACING: Tracing = _NoTracing()


class OtelTracing:
    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("session-fulfillment")
        self._extract = TraceContextTextMapPropagator().extract
        self._set_span = trace.set_span_in_context
        self._kinds = trace.SpanKind

    def consumed(
        self, traceparents: Iterable[str], *, fetched: int, decided: int, committed: int
    ) -> None:
        for traceparent in traceparents:
            parent = self._extract({"traceparent": traceparent})
            consume = self._tracer.start_span(
                "consume", context=parent, kind=self._kinds.CONSUMER, start_time=fetched
            )
            decide = self._tracer.start_span(
                "decide", context=self._set_span(consume), start_time=fetched
            )
            decide.end(end_time=decided)
            consume.end(end_time=committed)

    def published(self, traceparents: Iterable[str], *, sent: int, acknowledged: int) -> None:
        for traceparent in traceparents:
            span = self._tracer.start_span(
                "publish",
                context=self._extract({"traceparent": traceparent}),
                kind=self._kinds.PRODUCER,
                start_time=sent,
            )
            span.end(end_time=acknowledged)

    def shutdown(self) -> None:
        self._provider.shutdown()


def tracing_from_environment(service: str, version: str) -> Tracing:
    """OtelTracing exporting over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else
    NO_TRACING. Raises TracingUnavailable when it is set but the SDK is not installed."""
    if not os.environ.get(ENDPOINT):
        return NO_TRACING
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingUnavailable(
            f"{ENDPOINT} is set but the OpenTelemetry SDK is not installed: "
            "install session-fulfillment[otel], or unset it"
        ) from None
    resource = Resource.create({"service.name": service, "service.version": version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return OtelTracing(provider)
