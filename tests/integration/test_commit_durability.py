"""Which commits wait for the WAL flush: a decision's always (begun on its own, or in one step
with its customers' lock rows); a customer's lock row, inserted on its own before the decision,
not (the decision's later commit flushes it too)."""

from __future__ import annotations

import uuid
from typing import Any

from service.adapters import postgres
from service.bootstrap.factory import Clients

UNFLUSHED = "SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()"


async def test_a_customers_lock_row_commits_without_waiting_and_the_decision_waits(
    make_settings: Any,
) -> None:
    settings = make_settings()
    pool = await Clients(settings).pool(size=1)
    try:
        async with postgres.store_of(pool) as store:
            lagging = 0
            for _ in range(20):
                await store.ensure_customers([uuid.uuid4()])
                lagging += bool(await store.conn.fetchval(UNFLUSHED))
            # A decision's transaction, on a customer whose lock row is not flushed yet.
            customer = uuid.uuid4()
            await store.ensure_customers([customer])
            async with store.transaction():
                await store.lock_customers([customer])
                await store.claim_events([("payments", "evt_durable")])
                written = await store.conn.fetchval("SELECT pg_current_wal_insert_lsn()")
            # Its commit waited for the flush, which took the lock row with it (compared with
            # its own WAL position: other sessions on the server may leave theirs unflushed).
            assert await store.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1", written)
            assert await store.conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
    assert lagging > 0  # the walwriter may flush in between now and then, not every time


async def test_a_decision_begun_with_its_customers_lock_rows_in_one_step_waits_for_the_flush(
    make_settings: Any,
) -> None:
    settings = make_settings()
    pool = await Clients(settings).pool(size=1)
    try:
        async with postgres.store_of(pool) as store:
            customer = uuid.uuid4()
            async with store.locked([customer], ensure=[customer]):
                await store.claim_events([("payments", "evt_durable")])
                written = await store.conn.fetchval("SELECT pg_current_wal_insert_lsn()")
            assert await store.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1", written)
            assert await store.conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
