"""The service's connections find a batch's rows through indexes even in tables that grew
since their last ANALYZE (a new deployment, a rebuild into an empty database, a burst): with no
statistics, PostgreSQL would read the whole of `sessions` for every batch."""

from __future__ import annotations

from typing import Any

from service.adapters.postgres import sql
from service.bootstrap.factory import Clients

GROW = """
INSERT INTO customers (id) SELECT md5(i::text)::uuid FROM generate_series(1, 5000) AS i;
INSERT INTO sessions (id, customer_id, payment_id, session_type, status, created_at,
                      expires_at, created_event_id)
SELECT md5('s' || i)::uuid, md5(i::text)::uuid, 'pi_' || i, 'chat', 'waiting', now(),
       now() + interval '15 minutes', md5('e' || i)::uuid
FROM generate_series(1, 5000) AS i;
INSERT INTO payments (payment_id, customer_id, event_id, outcome, session_id)
SELECT 'pi_' || i, md5(i::text)::uuid, 'evt_' || i, 'created', md5('s' || i)::uuid
FROM generate_series(1, 5000) AS i;
"""


async def test_a_batchs_snapshot_read_uses_indexes_in_tables_never_analyzed(
    make_settings: Any,
) -> None:
    pool = await Clients(make_settings()).pool(size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(GROW)
            customers = await conn.fetchval(
                "SELECT array_agg(md5(i::text)::uuid)::text FROM generate_series(1, 83) AS i"
            )
            payments = await conn.fetchval(
                "SELECT array_agg('pi_' || i)::text FROM generate_series(1, 83) AS i"
            )
            # The deciding transaction's read, which claims its events in the same statement.
            await conn.execute(
                f"PREPARE probe(uuid[], uuid[], text[], text[], text[]) AS {sql.LOAD_AND_CLAIM}"
            )
            rows = await conn.fetch(
                f"EXPLAIN EXECUTE probe('{customers}', '{{}}', '{payments}', '{{s}}', '{{e}}')"
            )
            analyzed = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                "OR last_autoanalyze IS NOT NULL"
            )
    finally:
        await pool.close()
    plan = "\n".join(r[0] for r in rows)
    assert analyzed == 0  # what this test is about: no statistics yet
    assert "Seq Scan on sessions" not in plan, plan
    assert "Seq Scan on payments" not in plan, plan
