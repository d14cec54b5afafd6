"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a traced payment's consume, decide and publish spans
reach an OTLP/HTTP receiver, in the payment's own trace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness import Outcomes, Producer, payment, running

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACE = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Receiver:
    """A minimal OTLP/HTTP trace receiver: keeps (name, trace id, parent span id) per span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.arrived = asyncio.Event()

    async def traces(self, request: web.Request) -> web.Response:
        exported = ExportTraceServiceRequest.FromString(await request.read())
        for resource in exported.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append((span.name, span.trace_id.hex(), span.parent_span_id.hex()))
        self.arrived.set()
        return web.Response(status=200, content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", found.traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield found, f"http://127.0.0.1:{site.port}"
    finally:
        await runner.cleanup()


@pytest.mark.timeout(60)
async def test_a_traced_payment_s_consume_decide_and_publish_spans_are_exported_in_its_trace(
    make_settings: Any, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found, endpoint = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms; the default waits 5 s
    settings = make_settings()
    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer:
        async with running(settings):
            await producer.send(
                settings.topic_payments,
                payment(customer, "pi_otlp", time=datetime.now(UTC)),
                key=str(customer).encode(),
                headers=[("traceparent", TRACE.encode())],
            )
            await outcomes.wait_count(1, within=30)
        # Stopping the service flushes what the SDK still buffers.

    names = {name for name, trace, _ in found.spans if trace == TRACE_ID}
    assert {"consume", "decide", "publish"} <= names, found.spans
    parents = {name: parent for name, trace, parent in found.spans if trace == TRACE_ID}
    assert parents["consume"] == parents["publish"] == PARENT_ID
