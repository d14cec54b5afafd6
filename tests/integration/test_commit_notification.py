"""A commit that wrote outbox rows, in an instance whose own relay does not lead, tells the
leading relay with a notification sent with the COMMIT itself (one round trip), and only once;
while the instance's relay leads, it is told directly and nothing is sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from service.adapters import postgres
from service.handlers.outbox import outbox_row
from tests.conftest import create_database, drop_database
from tests.servers import Servers
from tests.unit.core.builders import decide, payment

pytestmark = pytest.mark.integration


class Relay:
    def __init__(self, leads: bool) -> None:
        self.leads = leads
        self.commits: list[float] = []

    def committed(self, at: float) -> None:
        self.commits.append(at)


@pytest.fixture
async def pool(servers: Servers) -> AsyncIterator[postgres.Pool]:
    dsn = await create_database(servers)
    pool = await postgres.create_pool(dsn, size=3)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(servers, dsn)


@pytest.mark.parametrize("leads", [False, True], ids=["another-leads", "this-one-leads"])
async def test_a_commit_with_outbox_rows_notifies_the_leading_relay_once_with_its_commit(
    pool: postgres.Pool, leads: bool
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    relay = Relay(leads)
    customer = uuid4()
    result = decide(payment("pay-1", customer))

    def hear(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        heard.put_nowait(str(payload))

    async with pool.acquire() as listener:
        await listener.add_listener(postgres.OUTBOX_CHANNEL, hear)
        before = time.time()
        async with postgres.store_of(pool, relay) as store:
            async with store.locked([customer], ensure=[customer]):
                await store.write_result(result, [outbox_row(e) for e in result.emitted])
            if not leads:  # sent with the commit: here before the announcement
                at = float(await asyncio.wait_for(heard.get(), timeout=10))
                assert before - 1 <= at <= time.time() + 1
            await store.announce_outbox()
        await asyncio.sleep(0.3)
        await listener.remove_listener(postgres.OUTBOX_CHANNEL, hear)
    assert heard.empty()  # nothing (more) was sent
    assert len(relay.commits) == 1  # this process's relay is told directly either way
