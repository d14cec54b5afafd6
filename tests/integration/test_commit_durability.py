"""Which commits wait for the WAL flush: a decision's always; a customer's lock row, inserted
on its own before the decision, not (the decision's later commit flushes it too)."""

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
            # Its commit waited for the flush, which took the lock row with it.
            assert not await store.conn.fetchval(UNFLUSHED)
            assert await store.conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
    assert lagging > 0  # the walwriter may flush in between now and then, not every time
