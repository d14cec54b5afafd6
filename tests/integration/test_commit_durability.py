"""Which commits wait for the WAL flush: a decision's always (begun on its own, or in one step
with its customers' lock rows); a customer's lock row, inserted on its own before the decision,
not (the decision's later commit flushes it too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.adapters import postgres
from service.adapters.postgres.store import PostgresStore
from service.bootstrap.factory import Clients

UNFLUSHED = "SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()"
WRITTEN = "SELECT pg_current_wal_insert_lsn()"


@pytest.fixture
async def store(make_settings: Any) -> AsyncIterator[PostgresStore]:
    """The store on a pool of one connection with the service's settings, so that every
    statement of a test runs in the same session."""
    pool = await Clients(make_settings()).pool(size=1)
    try:
        async with postgres.store_of(pool) as opened:
            yield opened
    finally:
        await pool.close()


async def flushed(store: PostgresStore, written: object) -> bool:
    """Whether the WAL is flushed up to `written`, a position this session's transaction
    reached (compared with its own position: other sessions on the server may leave theirs
    unflushed), and the session's commits are of the kind that wait for the flush."""
    assert await store.conn.fetchval("SHOW synchronous_commit") == "on"
    return bool(await store.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1", written))


async def test_a_customers_lock_row_commits_without_waiting_and_the_decision_waits(
    store: PostgresStore,
) -> None:
    lagging = 0
    for _ in range(20):
        await store.ensure_customers([uuid.uuid4()])
        lagging += bool(await store.conn.fetchval(UNFLUSHED))
    assert lagging > 0  # the walwriter may flush in between now and then, not every time
    # A decision's transaction, on a customer whose lock row is not flushed yet.
    customer = uuid.uuid4()
    await store.ensure_customers([customer])
    async with store.transaction():
        await store.lock_customers([customer])
        await store.claim_events([("payments", "evt_durable")])
        written = await store.conn.fetchval(WRITTEN)
    # Its commit waited for the flush, which took the lock row with it.
    assert await flushed(store, written)


async def test_a_decision_begun_with_its_customers_lock_rows_in_one_step_waits_for_the_flush(
    store: PostgresStore,
) -> None:
    customer = uuid.uuid4()
    async with store.locked([customer], ensure=[customer]):
        await store.claim_events([("payments", "evt_durable")])
        written = await store.conn.fetchval(WRITTEN)
    assert await flushed(store, written)
