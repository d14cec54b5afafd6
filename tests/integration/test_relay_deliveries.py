"""A relay batch goes to the broker as soon as it is handed over, not after the producer's
linger: the round filled it, and no other record will join it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service.adapters.kafka.deliveries import Deliveries
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics

pytestmark = pytest.mark.integration

# Far longer than the test waits: a batch left to linger would not be acknowledged in time.
LINGER_MS = 120_000


@pytest.mark.timeout(60)
async def test_a_relay_batch_is_acknowledged_without_waiting_out_the_producers_linger(
    make_settings: Any,
) -> None:
    settings = make_settings()
    clients = Clients(settings)
    await create_topics(clients)
    producer = clients.producer(linger_ms=LINGER_MS)
    await producer.start()
    try:
        ended = asyncio.Event()
        deliveries = Deliveries(hold=1.0, on_end=ended.set)
        builder = producer.create_batch()
        builder.append(key=b"customer", value=b"{}", timestamp=None, headers=[])
        topic = settings.topics.sessions_events
        deliveries.send(producer, topic, {0: (builder, [1], [])}, time.monotonic() + 30)
        await asyncio.wait_for(ended.wait(), timeout=15)
        [delivered] = deliveries.reap(producer).delivered
        assert delivered.seqs == [1]
    finally:
        await producer.stop()
