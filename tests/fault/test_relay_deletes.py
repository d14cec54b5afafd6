"""The relay's deletes under faults (real Kafka and PostgreSQL): rows the broker acknowledged
whose delete did not commit (the connection ended in the middle of it, as a failover or a
server turning read-only does) are not sent again by that relay once the database is back."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from tests.fault.test_relay_faults import add_rows, relaying
from tests.fault.tools import wait_until
from tests.harness import Outcomes
from tests.servers import Servers

pytestmark = pytest.mark.fault

BLOCKED = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE 'DELETE FROM outbox%'"
)


@pytest.mark.timeout(90)
async def test_rows_acknowledged_whose_delete_failed_are_not_sent_again_by_the_same_relay(
    make_settings: Any, servers: Servers, pool: postgres.Pool
) -> None:
    settings = make_settings(retry_backoff_max_seconds=0.2)
    await create_topics(Clients(settings))
    rows = [(f"customer-{i}".encode(), f"row {i}".encode()) for i in range(5)]
    await add_rows(pool, rows)
    # Another session holds the rows: the relay's delete of what the broker acknowledged waits.
    holder = await asyncpg.connect(settings.dsn)
    admin = await asyncpg.connect(servers.database_url)
    holding = holder.transaction()
    await holding.start()
    await holder.execute("SELECT seq FROM outbox FOR UPDATE")
    producer = Clients(settings).producer()
    await producer.start()
    try:
        async with Outcomes(settings) as published, relaying(Relay(settings, pool, producer)):
            await published.wait_for(lambda o: len(o.records) >= len(rows), within=30)
            pid = holder.get_server_pid()
            first: list[int] = []

            async def delete_waits() -> bool:
                first[:] = [r["pid"] for r in await admin.fetch(BLOCKED, pid)]
                return bool(first)

            await wait_until(delete_waits, within=30)
            # Acknowledged, its delete under way: the relay's session ends (57P01).
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", first
            )

            async def deletes_again() -> bool:
                pids = {r["pid"] for r in await admin.fetch(BLOCKED, pid)}
                return bool(pids - set(first))

            # Its next session: a delete waits again (of the rows remembered, or of their copies).
            await wait_until(deletes_again, within=30)
            await holding.rollback()
            await wait_until(lambda: outbox_empty(pool), within=30)
            await asyncio.sleep(1.0)  # a copy would arrive meanwhile
    finally:
        await producer.stop()
        await holder.close()
        await admin.close()
    assert sorted(r.value for r in published.records) == sorted(value for _, value in rows)


async def outbox_empty(pool: postgres.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) = 0 FROM outbox"))
