"""A PostgreSQL outage while the service runs: it neither dead-letters nor skips what it cannot
decide, commits no offset for it, and decides every event exactly once after recovery."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

import schemas
from tests.fault.tools import Offsets, fetchval, outcomes_by_payment, wait_drained, wall_now
from tests.harness import Outcomes, Producer, running
from tests.servers import Servers

pytestmark = pytest.mark.fault


@contextlib.asynccontextmanager
async def unreachable(servers: Servers, dsn: str) -> AsyncIterator[None]:
    """This test's database refuses connections and loses the ones it had, until exit; the
    other tests' databases on the same server are untouched."""
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


@pytest.mark.timeout(90)
async def test_a_database_outage_holds_the_events_back_and_decides_each_once_after_recovery(
    make_settings: Any, servers: Servers
) -> None:
    settings = make_settings(retry_backoff_max_seconds=0.5)
    customers = [uuid.uuid4() for _ in range(10)]
    now = wall_now()
    async with (
        Outcomes(settings) as outcomes,
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Producer(settings) as producer,
        Offsets(settings) as offsets,
        running(settings),
    ):
        await asyncio.gather(
            *(producer.pay(c, f"pi_{i}_1", time=now) for i, c in enumerate(customers))
        )
        await wait_drained(settings)
        before = await offsets.committed()

        async with unreachable(servers, settings.dsn):
            later = now + timedelta(minutes=1)
            await asyncio.gather(
                *(producer.pay(c, f"pi_{i}_2", time=later) for i, c in enumerate(customers))
            )
            # And a customer never seen, whose first payment cannot even get a lock row.
            await producer.pay(uuid.uuid4(), "pi_new", time=later)
            await asyncio.sleep(3.0)  # several retries, on a backoff capped at 0.5 s
            assert await offsets.committed() == before
            assert await offsets.lag() == len(customers) + 1
            assert len(outcomes.records) == len(customers)

        await wait_drained(settings, within=30)
        published = await offsets.count(settings.topic_sessions)
        await outcomes.wait_for(lambda o: len(o.records) >= published)
        assert await offsets.count(settings.topic_dlq) == 0

    assert not dlq.records
    by_payment = outcomes_by_payment(outcomes.events)
    assert by_payment == {
        **{f"pi_{i}_1": [schemas.SESSION_CREATED] for i in range(len(customers))},
        **{f"pi_{i}_2": [schemas.SESSION_REJECTED] for i in range(len(customers))},
        "pi_new": [schemas.SESSION_CREATED],
    }
    assert await fetchval(settings.dsn, "SELECT count(*) FROM payments") == 2 * len(customers) + 1
