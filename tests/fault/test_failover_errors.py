"""What a failover raises, provoked on the real server while the service runs: a demoted primary
answering read-only (25006), sessions ended by the server (57P01). Each is an outage: the batch
is retried past FULFILLMENT_POISON_RETRIES, nobody is parked, the relay sends nothing it could
not delete, and once it passes every payment has exactly one outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

import schemas
from service.adapters import postgres
from service.adapters.kafka.producer_owner import ProducerOwner
from service.adapters.kafka.relay import Relay
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from service.observe.health import Health
from service.observe.watch import Watch
from tests.fault.test_relay_faults import relaying
from tests.fault.tools import fetchval, outcomes_by_payment, wait_drained, wait_until, wall_now
from tests.harness import Outcomes, Producer, running
from tests.servers import Servers

pytestmark = pytest.mark.fault

CUSTOMERS = 6


def database_of(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1].split("?")[0]


@contextlib.asynccontextmanager
async def read_only(servers: Servers, dsn: str) -> AsyncIterator[None]:
    """This test's database answers but refuses every write, as a demoted primary does, until
    exit; its sessions are ended at both ends so that new ones take the setting."""
    name = database_of(dsn)
    admin = await asyncpg.connect(servers.database_url)
    terminate = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()"
    )
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await admin.execute(terminate, name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await admin.execute(terminate, name)
        await admin.close()


@contextlib.asynccontextmanager
async def ending_blocked_sessions(
    servers: Servers, dsn: str, customers: list[uuid.UUID]
) -> AsyncIterator[None]:
    """Holds the customers' lock rows and ends every session of the service that waits on them
    (`pg_terminate_backend`: 57P01, which asyncpg reports as the connection closed in the middle
    of the operation), until exit."""
    holder = await asyncpg.connect(dsn)
    admin = await asyncpg.connect(servers.database_url)
    stop = asyncio.Event()

    async def end_waiters() -> None:
        while not stop.is_set():
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND $2 = ANY(pg_blocking_pids(pid))",
                database_of(dsn),
                holder.get_server_pid(),
            )
            await asyncio.sleep(0.02)

    transaction = holder.transaction()
    await transaction.start()
    await holder.execute(
        "SELECT id FROM customers WHERE id = ANY($1::uuid[]) FOR UPDATE", customers
    )
    ender = asyncio.create_task(end_waiters())
    try:
        yield
    finally:
        stop.set()
        await ender
        await transaction.rollback()
        await holder.close()
        await admin.close()


async def flapping(fault: Callable[[], contextlib.AbstractAsyncContextManager[None]]) -> None:
    """The fault on and off for a few seconds, as while a pool finds the new primary: a poison
    search straddling a flip would see a prefix pass and blame the event after it."""
    async with asyncio.timeout(30):
        for _ in range(8):
            async with fault():
                await asyncio.sleep(0.4)
            await asyncio.sleep(0.3)


async def pay_twice_with_a_fault_between(
    settings: Any,
    fault: Callable[[], contextlib.AbstractAsyncContextManager[None]],
    customers: list[uuid.UUID],
) -> dict[str, list[str]]:
    now = wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        for i, customer in enumerate(customers):
            await producer.pay(customer, f"pi_{i}_1", time=now)
        await outcomes.wait_for(lambda o: len(distinct(o)) >= len(customers), within=30)
        await wait_drained(settings)
        flaps = asyncio.create_task(flapping(fault))
        later = now + timedelta(minutes=1)
        for i, customer in enumerate(customers):
            await producer.pay(customer, f"pi_{i}_2", time=later)
        # Many attempts (backoff capped at 0.2 s), far more than the one poison retry.
        await flaps
        await wait_drained(settings, within=40)
        await outcomes.wait_for(lambda o: len(distinct(o)) >= 2 * len(customers), within=30)
    return outcomes_by_payment(distinct(outcomes))


def distinct(outcomes: Outcomes) -> list[schemas.OutputEvent]:
    """One event per id. Delivery is at-least-once (docs/contract.md, 5): a batch in flight
    when the relay's connection ends is abandoned and sent again, with the same ids, though the
    broker may have appended it. What the relay could avoid, sending again a row the broker
    acknowledged, it does not do (tests/fault/test_relay_deletes.py)."""
    return list({e.id: e for e in outcomes.events}.values())


async def outbox_empty(pool: postgres.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) = 0 FROM outbox"))


def one_outcome_each(customers: list[uuid.UUID]) -> dict[str, list[str]]:
    return {
        **{f"pi_{i}_1": [schemas.SESSION_CREATED] for i in range(len(customers))},
        **{f"pi_{i}_2": [schemas.SESSION_REJECTED] for i in range(len(customers))},
    }


@pytest.mark.timeout(120)
async def test_a_read_only_database_is_an_outage_that_parks_nobody(
    make_settings: Any, servers: Servers
) -> None:
    settings = make_settings(poison_retries=1, retry_backoff_max_seconds=0.2)
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    fault = functools.partial(read_only, servers, settings.dsn)
    by_payment = await pay_twice_with_a_fault_between(settings, fault, customers)
    assert await fetchval(settings.dsn, "SELECT count(*) FROM parked_events") == 0
    assert by_payment == one_outcome_each(customers)


@pytest.mark.timeout(120)
async def test_sessions_ended_by_the_server_are_an_outage_that_parks_nobody(
    make_settings: Any, servers: Servers
) -> None:
    settings = make_settings(poison_retries=1, retry_backoff_max_seconds=0.2)
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    fault = functools.partial(ending_blocked_sessions, servers, settings.dsn, customers)
    by_payment = await pay_twice_with_a_fault_between(settings, fault, customers)
    assert await fetchval(settings.dsn, "SELECT count(*) FROM parked_events") == 0
    assert by_payment == one_outcome_each(customers)


@pytest.mark.timeout(90)
async def test_the_relay_sends_nothing_while_the_database_is_read_only_and_each_row_once_after(
    make_settings: Any, servers: Servers, pool: postgres.Pool
) -> None:
    """A demoted primary left running read-only answers the relay's reads, but its deletes
    fail: were it to send, it would send the same rows every round."""
    settings = make_settings(retry_backoff_max_seconds=0.2)
    await create_topics(Clients(settings))
    producer = Clients(settings).producer()
    await producer.start()
    try:
        async with Outcomes(settings) as published:
            async with read_only(servers, settings.dsn):
                async with relaying(Relay(settings, pool, producer)):
                    rows = [(f"customer-{i}".encode(), f"row {i}".encode()) for i in range(5)]
                    writer = await asyncpg.connect(settings.dsn)
                    try:
                        # Rows committed before the demotion: written with read-only off.
                        await writer.execute("SET default_transaction_read_only = off")
                        await writer.executemany(
                            "INSERT INTO outbox (event_id, key, value) "
                            "VALUES (gen_random_uuid(), $1, $2)",
                            rows,
                        )
                    finally:
                        await writer.close()
                    await asyncio.sleep(3.0)  # many rounds, on a backoff capped at 0.2 s
                    during = len(published.records)
            async with relaying(Relay(settings, pool, producer)):
                await published.wait_for(lambda o: len(o.records) >= len(rows), within=30)
                await wait_until(lambda: outbox_empty(pool), within=30)
                await asyncio.sleep(1.0)  # a repeat would arrive meanwhile
    finally:
        await producer.stop()
    assert during == 0
    assert sorted(r.value for r in published.records) == sorted(value for _, value in rows)


@pytest.mark.timeout(60)
async def test_readiness_names_the_failover_while_the_database_takes_no_writes(
    make_settings: Any, servers: Servers, pool: postgres.Pool
) -> None:
    settings = make_settings()
    producer = Clients(settings).producer()
    await producer.start()
    health = Health()
    kafka = ProducerOwner(producer)
    watch = Watch(interval=5.0, pool=pool, kafka=kafka, consumers=[], health=health)
    try:
        await watch.check_once()
        assert "postgresql" not in health.problems()
        async with read_only(servers, settings.dsn):
            for _ in range(3):  # the first may meet a connection the demotion ended
                await watch.check_once()
            during = health.problems().get("postgresql", "")
        for _ in range(3):
            await watch.check_once()
        after = health.problems()
    finally:
        await producer.stop()
    assert during.startswith("failover: ReadOnlySQLTransactionError: ")
    assert "postgresql" not in after
