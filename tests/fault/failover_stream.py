"""A steady stream of payments, with the acceptances and ends their sessions call for, and what
came out of it: for the failover test and for measuring what the replication guard costs."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import schemas
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from tests.fault.tools import wall_now
from tests.harness import acceptance, ended, payment

BURST_SECONDS = 0.02


@dataclass
class Stream:
    """What was sent (payments in order, per customer) and what came out, by output event id."""

    sent_at: dict[str, float] = field(default_factory=dict)  # payment id -> monotonic time
    by_customer: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    outputs: dict[str, schemas.OutputEvent] = field(default_factory=dict)  # first of each id
    order: list[str] = field(default_factory=list)  # output ids in arrival order, once each
    arrived_at: dict[str, float] = field(default_factory=dict)  # output id -> monotonic time
    duplicates: int = 0
    accepted_sent: int = 0
    ended_sent: int = 0

    def outcome_of(self) -> dict[str, list[str]]:
        """payment id -> the distinct created/rejected outputs published for it."""
        found: dict[str, list[str]] = {}
        for event_id in self.order:
            data = self.outputs[event_id].data
            if isinstance(data, schemas.SessionCreated | schemas.SessionRejected):
                found.setdefault(data.payment_id, []).append(event_id)
        return found

    def latencies_ms(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Send -> outcome received, for payments sent in [since, until), sorted."""
        found = []
        for payment_id, (event_id, *_) in self.outcome_of().items():
            sent = self.sent_at[payment_id]
            if since <= sent < until:
                found.append((self.arrived_at[event_id] - sent) * 1000)
        return sorted(found)


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


@contextlib.asynccontextmanager
async def streaming(
    settings: Settings, *, rate: float, seconds: float, customers: int, seed: int = 7
) -> AsyncIterator[tuple[Stream, asyncio.Task[None]]]:
    """Payments at `rate` per second for `seconds` across `customers`; each session created is
    accepted, and each accepted one ended, as their outputs arrive. Yields the record and the
    sending task; reads outputs until exit."""
    clients = Clients(settings)
    producer = clients.producer(linger_ms=5)
    reader = clients.consumer(group_id=None)
    reader.subscribe([settings.topic_sessions])
    await producer.start()
    await reader.start()
    stream = Stream()
    rng = random.Random(seed)
    people = [uuid.uuid4() for _ in range(customers)]
    mechanic = uuid.uuid4()

    async def send(topic: str, value: bytes, key: uuid.UUID) -> None:
        await producer.send(topic, value=value, key=str(key).encode())

    async def pay() -> None:
        per_burst = max(1, round(rate * BURST_SECONDS))
        bursts = round(seconds / BURST_SECONDS)
        start = time.monotonic()
        for burst in range(bursts):
            for i in range(per_burst):
                customer = rng.choice(people)
                payment_id = f"pi_{burst}_{i}"
                stream.by_customer.setdefault(customer, []).append(payment_id)
                stream.sent_at[payment_id] = time.monotonic()
                await send(
                    settings.topic_payments,
                    payment(customer, payment_id, time=wall_now(), event_id=payment_id),
                    customer,
                )
            delay = start + (burst + 1) * BURST_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()

    async def read() -> None:
        async for record in reader:
            event = schemas.decode_output(record.value)
            if event.id in stream.outputs:
                stream.duplicates += 1
                continue
            stream.outputs[event.id] = event
            stream.order.append(event.id)
            stream.arrived_at[event.id] = time.monotonic()
            data = event.data
            if isinstance(data, schemas.SessionCreated):
                stream.accepted_sent += 1
                value = acceptance(data.session_id, mechanic, time=wall_now())
                await send(settings.topic_acceptances, value, data.session_id)
            elif isinstance(data, schemas.SessionAccepted):
                stream.ended_sent += 1
                await send(
                    settings.topic_ended, ended(data.session_id, time=wall_now()), data.session_id
                )

    reading = asyncio.create_task(read())
    sending = asyncio.create_task(pay())
    try:
        yield stream, sending
    finally:
        for task in (sending, reading):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await reader.stop()
        await producer.stop()
