"""The outbox relay on the real stack: a customer's events reach `sessions.events` in the order
they were decided (guarantee 4), the outbox empties, and a NOTIFY wakes the relay at once; a
commit in the leading relay's own process wakes it without one, and every wake-up is timed from
its commit."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.adapters.kafka.relay import Relay, partition_for
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from service.observe.metrics import REGISTRY
from tests.fault.tools import wait_until, wall_now
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.integration

# Six payments of one customer, in this order on its partition: each pair is a creation and a
# rejection, and each later pair comes after the previous session expired (by business time).
OFFSETS = [timedelta(minutes=m) for m in (0, 1, 20, 21, 40, 41)]


def _expected(customer: uuid.UUID) -> list[tuple[str, str]]:
    """(type, payment id or session's payment id) as decided, in order."""
    p = [f"{customer}-pi_{i}" for i in range(len(OFFSETS))]
    c, r, x = schemas.SESSION_CREATED, schemas.SESSION_REJECTED, schemas.SESSION_CANCELLED
    return [(c, p[0]), (r, p[1]), (x, p[0]), (c, p[2]), (r, p[3]), (x, p[2]), (c, p[4]), (r, p[5])]


def _summary(event: schemas.OutputEvent) -> tuple[str, str]:
    data = event.data
    assert isinstance(
        data, schemas.SessionCreated | schemas.SessionRejected | schemas.SessionCancelled
    )
    return event.type, data.payment_id


@pytest.mark.timeout(60)
async def test_a_customers_events_are_published_in_the_order_they_were_decided(
    make_settings: Any, pool: postgres.Pool
) -> None:
    # Small relay batches, so a customer's events span several of them.
    settings = make_settings(relay_batch_size=7)
    customers = [uuid.uuid4() for _ in range(20)]
    base = wall_now()
    total = len(customers) * len(_expected(customers[0]))
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        for i, offset in enumerate(OFFSETS):
            await asyncio.gather(
                *(producer.pay(c, f"{c}-pi_{i}", time=base + offset) for c in customers)
            )
        await outcomes.wait_count(total, within=30)

        async def outbox_empty() -> bool:
            return bool(await pool.fetchval("SELECT count(*) = 0 FROM outbox"))

        await wait_until(outbox_empty, within=5)
    assert len(outcomes.records) == total
    for customer in customers:
        mine = [r for r in outcomes.records if r.key == str(customer).encode()]
        # All on the partition the Java client's default partitioner would pick for the key.
        key = str(customer).encode()
        assert {r.partition for r in mine} == {partition_for(key, settings.topic_partitions)}
        assert [_summary(schemas.decode_output(r.value)) for r in mine] == _expected(customer)


async def test_a_notify_from_another_connection_wakes_the_relay_long_before_its_next_poll(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(relay_poll_interval_seconds=30)
    customer, now = uuid.uuid4(), wall_now()
    rows = []
    for i in range(2):
        data = schemas.SessionCancelled(
            session_id=uuid.uuid4(),
            customer_id=customer,
            payment_id=f"pi_{i}",
            cancelled_at=now,
        )
        event = schemas.output_event(data, causation_id=f"manual-{i}", time=now)
        rows.append((uuid.UUID(event.id), str(customer).encode(), schemas.encode(event)))
    insert = "INSERT INTO outbox (event_id, key, value) VALUES ($1, $2, $3)"
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(uuid.uuid4(), "pi_warmup", time=now)
        await outcomes.wait_count(1)  # the relay is up, published, and is waiting now
        await asyncio.sleep(0.3)
        # Committed without a NOTIFY: it waits for the next poll, 30 s away.
        await pool.execute(insert, *rows[0])
        await asyncio.sleep(1.5)
        assert len(outcomes.records) == 1
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(insert, *rows[1])
            await conn.execute(f"SELECT pg_notify('{postgres.OUTBOX_CHANNEL}', '')")
        notified = time.monotonic()
        await outcomes.wait_count(3, within=10)
        took = time.monotonic() - notified
    assert took < 3.0
    # Both rows went out in seq order, each exactly as it was written.
    assert [r.value for r in outcomes.records[1:]] == [rows[0][2], rows[1][2]]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


WAKES = "fulfillment_relay_wake_seconds"


def _wakes() -> tuple[float, float]:
    """(observations, their sum in seconds) of the relay's wake-up histogram so far."""
    count = REGISTRY.get_sample_value(f"{WAKES}_count") or 0.0
    return count, REGISTRY.get_sample_value(f"{WAKES}_sum") or 0.0


@pytest.mark.timeout(60)
async def test_a_decision_in_the_leading_relay_s_own_process_wakes_it_without_a_notification(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(relay_poll_interval_seconds=30)
    heard: list[str] = []

    def listen(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        heard.append(str(payload))

    now = wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(uuid.uuid4(), "pi_warmup", time=now)
        await outcomes.wait_count(1)  # the service's relay leads by now
        async with pool.acquire() as listener:
            await listener.add_listener(postgres.OUTBOX_CHANNEL, listen)
            before = _wakes()
            await producer.pay(uuid.uuid4(), "pi_1", time=now)
            await outcomes.wait_count(2, within=10)  # long before the next poll
            await asyncio.sleep(0.5)  # time for a notification, had one been sent
            await listener.remove_listener(postgres.OUTBOX_CHANNEL, listen)
    assert heard == []
    assert _wakes()[0] > before[0]


@pytest.mark.timeout(60)
async def test_a_commit_told_after_its_row_already_left_is_still_timed(
    make_settings: Any, pool: postgres.Pool
) -> None:
    # The store tells the relay of its commit once PostgreSQL answers; a round that began in
    # between reads the row and sends it first. The commit is timed all the same.
    settings = make_settings(relay_poll_interval_seconds=30)
    await create_topics(Clients(settings))
    producer = Clients(settings).producer()
    await producer.start()
    relay = Relay(settings, pool, producer)
    task = asyncio.create_task(relay.run())
    try:
        async with Outcomes(settings) as outcomes:
            await wait_until(lambda: _leads(relay))  # and has read the empty outbox
            committed = time.time()
            await pool.execute(
                "INSERT INTO outbox (event_id, key, value) VALUES ($1, $2, $3)", *_cancelled()
            )
            before = _wakes()
            relay.wake()  # a round that began before the store told its commit
            await outcomes.wait_count(1, within=10)
            relay.committed(committed)
            await wait_until(lambda: _counted(before), within=5)
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await producer.stop()


def _cancelled() -> tuple[uuid.UUID, bytes, bytes]:
    """An outbox row as a store writes it: a session's cancellation."""
    customer, now = uuid.uuid4(), wall_now()
    data = schemas.SessionCancelled(
        session_id=uuid.uuid4(), customer_id=customer, payment_id="pi_0", cancelled_at=now
    )
    event = schemas.output_event(data, causation_id="manual-0", time=now)
    return uuid.UUID(event.id), str(customer).encode(), schemas.encode(event)


async def _leads(relay: Relay) -> bool:
    return relay.leads


async def _counted(before: tuple[float, float]) -> bool:
    return _wakes()[0] > before[0]


@pytest.mark.timeout(60)
async def test_another_instance_s_commit_wakes_the_relay_and_is_timed_from_its_notification(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(relay_poll_interval_seconds=30)
    now, row = wall_now(), _cancelled()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(uuid.uuid4(), "pi_warmup", time=now)
        await outcomes.wait_count(1)
        await asyncio.sleep(0.3)
        before = _wakes()
        # As another instance's store does it: the rows' transaction, then its announcement.
        started = time.time()
        async with postgres.store_of(pool) as store:
            async with store.transaction():
                await store.conn.execute(
                    "INSERT INTO outbox (event_id, key, value) VALUES ($1, $2, $3)", *row
                )
            await store.announce_outbox()
        await outcomes.wait_count(2, within=10)
        elapsed = time.time() - started
    count, total = _wakes()
    assert count == before[0] + 1
    # Counted from the commit (after `started`), not from any earlier moment.
    assert 0.0 <= total - before[1] <= elapsed
    assert outcomes.records[1].value == row[2]
