"""A batch reaches PostgreSQL the same way whatever its size: its start (customers ensured and
locked) in one simple query or with the ids as parameters, its rows in one statement
(sql.INSERT_ROWS) or by COPY, each table's rows complete and the outbox in the batch's order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest

from service.adapters import postgres
from service.adapters.postgres import sql
from service.core.batch import BatchResult
from service.core.ports import ConstraintViolated
from service.handlers.outbox import outbox_row
from tests.conftest import create_database, drop_database
from tests.servers import Servers
from tests.unit.core.builders import decide, payment

pytestmark = pytest.mark.integration

# Each payment of a new customer writes a session, a payment and an outbox row.
SMALL = sql.WRITE_ROWS_MAX // 3
LARGE = sql.WRITE_ROWS_MAX // 3 + 1


@pytest.fixture
async def pool(servers: Servers) -> AsyncIterator[postgres.Pool]:
    dsn = await create_database(servers)
    pool = await postgres.create_pool(dsn, size=2)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(servers, dsn)


def created(count: int, prefix: str) -> BatchResult:
    return decide(*(payment(f"{prefix}-{i}", uuid4()) for i in range(count)))


async def write(pool: postgres.Pool, result: BatchResult) -> None:
    customers = sorted({s.customer_id for s in result.inserted}, key=lambda c: c.int)
    async with postgres.store_of(pool) as store:
        async with store.locked(customers, ensure=customers):
            await store.write_result(result, [outbox_row(e) for e in result.emitted])


@pytest.mark.parametrize("count", [SMALL, LARGE], ids=["one-statement", "copy"])
async def test_a_batch_writes_its_sessions_payments_and_outbox_rows_in_its_order(
    pool: postgres.Pool, count: int
) -> None:
    result = created(count, "pay")
    await write(pool, result)
    async with pool.acquire() as conn:
        sessions = await conn.fetchval("SELECT count(*) FROM sessions WHERE status = 'waiting'")
        payments = await conn.fetch("SELECT payment_id, outcome FROM payments")
        outbox = await conn.fetch(
            "SELECT event_id, key, value, traceparent FROM outbox ORDER BY seq"
        )
    assert sessions == count
    assert sorted((r["payment_id"], r["outcome"]) for r in payments) == sorted(
        (p.payment_id, p.outcome) for p in result.payments
    )
    expected = [outbox_row(e) for e in result.emitted]
    assert [(str(r[0]), r[1], r[2], r[3]) for r in outbox] == [tuple(r) for r in expected]


@pytest.mark.parametrize("count", [SMALL, LARGE], ids=["one-statement", "copy"])
async def test_a_batch_that_breaks_a_rule_is_refused_whole(pool: postgres.Pool, count: int) -> None:
    first = created(count, "pay")
    await write(pool, first)
    # The same payments decided again as if never seen: every outcome is a second one.
    with pytest.raises(ConstraintViolated):
        await write(pool, first)
    async with pool.acquire() as conn:
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    assert outbox == count


@pytest.mark.parametrize(
    "count", [1, sql.LITERAL_IDS_MAX // 2 + 1], ids=["one-round-trip", "ids-as-parameters"]
)
async def test_a_transaction_begun_locked_ensures_and_locks_every_one_of_its_customers(
    pool: postgres.Pool, count: int
) -> None:
    customers = sorted((uuid4() for _ in range(count)), key=lambda c: c.int)
    released = asyncio.Event()
    async with postgres.store_of(pool) as holder, postgres.store_of(pool) as waiter:

        async def hold() -> None:
            async with holder.locked(customers, ensure=customers):
                await released.wait()

        async def wait_for(customer: UUID) -> None:
            async with waiter.locked([customer]):
                pass

        holding = asyncio.create_task(hold())
        await asyncio.sleep(0.2)
        for customer in (customers[0], customers[-1]):
            waiting = asyncio.create_task(wait_for(customer))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the row exists and is locked
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        released.set()
        await asyncio.wait_for(holding, timeout=5)
        await asyncio.wait_for(wait_for(customers[-1]), timeout=5)
