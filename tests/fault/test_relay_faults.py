"""The relay under faults (real Kafka and PostgreSQL): a partition the broker refuses does not
stop the others, and what is behind it on that partition waits, in order; a producer that no
longer works is replaced and publishing resumes; the fence asks PostgreSQL whether this very
session still holds the leader's lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.adapters import postgres
from service.adapters.kafka.relay import Relay, partition_for
from service.adapters.postgres import outbox, sql
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from tests.fault.tools import wait_until
from tests.harness import Outcomes

pytestmark = pytest.mark.fault


def keys_by_partition(partitions: int) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for i in range(200):
        key = f"customer-{i}".encode()
        found[partition_for(key, partitions)].append(key)
    return found


async def add_rows(pool: postgres.Pool, rows: list[tuple[bytes, bytes]]) -> None:
    await pool.executemany(
        "INSERT INTO outbox (event_id, key, value) VALUES (gen_random_uuid(), $1, $2)", rows
    )


@contextlib.asynccontextmanager
async def relaying(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        relay.stop()
        await asyncio.wait_for(task, 60)


@pytest.mark.timeout(90)
async def test_a_partition_the_broker_refuses_does_not_stop_the_others_and_its_later_rows_wait(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(kafka_produce_timeout_seconds=5)
    await create_topics(Clients(settings))
    keys = keys_by_partition(settings.topic_partitions)
    stuck, *others = range(settings.topic_partitions)
    # Over the topic's 1 MiB limit: the broker refuses this partition's batch, every time.
    await add_rows(pool, [(keys[stuck][0], b"x" * 1_500_000), (keys[stuck][1], b"behind")])
    await add_rows(pool, [(keys[p][0], f"to {p}".encode()) for p in others])
    producer = Clients(settings).producer()
    await producer.start()
    try:
        with capture_logs() as logs:
            async with Outcomes(settings) as published, relaying(Relay(settings, pool, producer)):
                await published.wait_for(lambda o: len(o.records) >= len(others), within=30)

                async def refused() -> bool:
                    return any(e["event"] == "relay_partition_failed" for e in logs)

                await wait_until(refused)
                await asyncio.sleep(1)  # more rounds: still nothing of the stuck partition
                values = sorted(r.value for r in published.records)
    finally:
        await producer.stop()
    assert values == sorted(f"to {p}".encode() for p in others)
    left = await pool.fetch("SELECT key, value FROM outbox ORDER BY seq")
    assert [r["key"] for r in left] == [keys[stuck][0], keys[stuck][1]]


@pytest.mark.timeout(90)
async def test_a_producer_that_no_longer_works_is_replaced_and_publishing_resumes(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(kafka_produce_timeout_seconds=1, retry_backoff_max_seconds=0.2)
    await create_topics(Clients(settings))
    keys = keys_by_partition(settings.topic_partitions)
    broken = Clients(settings).producer()
    await broken.start()
    await broken.stop()  # aiokafka's producer, once closed, never answers again
    relay = Relay(settings, pool, broken, new_producer=Clients(settings).producer)
    with capture_logs() as logs:
        async with Outcomes(settings) as published, relaying(relay):
            await add_rows(pool, [(keys[p][0], f"to {p}".encode()) for p in keys])
            await published.wait_for(lambda o: len(o.records) >= len(keys), within=45)
    assert any(e["event"] == "producer_replaced" for e in logs)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_the_fence_sees_the_leader_s_lock_only_on_the_session_that_holds_it(
    pool: postgres.Pool,
) -> None:
    async with pool.acquire() as leader, pool.acquire() as other:
        assert not await outbox.holds_lock(leader, sql.RELAY_LOCK_KEY)
        assert await outbox.try_lock(leader, sql.RELAY_LOCK_KEY)
        assert await outbox.holds_lock(leader, sql.RELAY_LOCK_KEY)
        assert not await outbox.holds_lock(other, sql.RELAY_LOCK_KEY)
        assert not await outbox.holds_lock(leader, sql.MIGRATION_LOCK_KEY)
        await outbox.unlock(leader, sql.RELAY_LOCK_KEY)
        assert not await outbox.holds_lock(leader, sql.RELAY_LOCK_KEY)


async def test_a_round_s_first_page_carries_the_fence_of_the_session_that_reads_it(
    pool: postgres.Pool,
) -> None:
    async with pool.acquire() as leader, pool.acquire() as other:
        assert await outbox.first_page_fenced(leader, 10, sql.RELAY_LOCK_KEY) == ([], None)
        await add_rows(pool, [(b"k", b"v")])
        assert await outbox.try_lock(leader, sql.RELAY_LOCK_KEY)
        rows, fence = await outbox.first_page_fenced(leader, 10, sql.RELAY_LOCK_KEY)
        assert [r["value"] for r in rows] == [b"v"]
        assert fence == (True, False)
        assert (await outbox.first_page_fenced(other, 10, sql.RELAY_LOCK_KEY))[1] == (False, False)
        await outbox.unlock(leader, sql.RELAY_LOCK_KEY)
        assert (await outbox.first_page_fenced(leader, 10, sql.RELAY_LOCK_KEY))[1] == (False, False)


@pytest.mark.timeout(90)
async def test_a_customer_s_row_committed_between_two_page_reads_never_overtakes_an_earlier_one(
    make_settings: Any, pool: postgres.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two rows; the first page fills one partition's batch (two rows of 600 kB), so
    # the round reads a second page. Between the two reads, the customer's earlier
    # transaction (the lowest seq, open when the first page was read) commits, and then the
    # customer's next one: the later row must not leave before the earlier one.
    settings = make_settings(relay_batch_size=2)
    await create_topics(Clients(settings))
    keys = keys_by_partition(settings.topic_partitions)
    full, mine = 0, 1
    customer = keys[mine][0]
    insert = "INSERT INTO outbox (event_id, key, value) VALUES (gen_random_uuid(), $1, $2)"
    pages = 0
    read_page = outbox.next_outbox
    producer = Clients(settings).producer()
    await producer.start()
    try:
        async with pool.acquire() as earlier:
            transaction = earlier.transaction()
            await transaction.start()
            await earlier.execute(insert, customer, b"earlier")
            await add_rows(pool, [(keys[full][i], bytes([i]) * 600_000) for i in range(2)])

            async def interleaved(conn: Any, limit: int, after: int = 0) -> Any:
                nonlocal pages
                rows = await read_page(conn, limit, after)
                pages += 1
                if pages == 1:
                    await transaction.commit()
                    await pool.execute(insert, customer, b"later")
                return rows

            monkeypatch.setattr(outbox, "next_outbox", interleaved)
            async with Outcomes(settings) as published, relaying(Relay(settings, pool, producer)):
                await published.wait_for(lambda o: len(o.records) >= 4, within=30)
    finally:
        await producer.stop()
    assert pages >= 2  # the round did read a second page
    assert [r.value for r in published.records if r.partition == mine] == [b"earlier", b"later"]
