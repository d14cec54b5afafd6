"""A relay on a server that stops taking writes while it has nothing to send (real Kafka and
PostgreSQL): a switchover leaves the old primary running read-only with its sessions open, and
its outbox empty, since the decisions now commit on the new one. A relay that only checked the
server when it had rows to send would read that empty outbox for good; it must let go, and the
one that finds the new primary publishes. Both as the leader and as a relay waiting for the
lock."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.adapters.postgres import Connection, outbox, sql
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from tests.fault import ha_pair
from tests.fault.test_relay_faults import add_rows, relaying
from tests.fault.tools import wait_until
from tests.harness import Outcomes
from tests.servers import Servers

pytestmark = pytest.mark.fault


async def test_no_relay_takes_the_leader_s_lock_where_the_server_takes_no_writes(
    pool: postgres.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SET default_transaction_read_only = on")
        try:
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
                await outbox.try_lock(conn, sql.RELAY_LOCK_KEY)
            held = await outbox.holds_lock(conn, sql.RELAY_LOCK_KEY)
        finally:
            await conn.execute("RESET default_transaction_read_only")
            await conn.execute("SELECT pg_advisory_unlock_all()")
    assert not held


@pytest.mark.timeout(90)
async def test_a_leading_relay_lets_go_of_a_server_turned_read_only_though_its_outbox_is_empty(
    make_settings: Any, pool: postgres.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's own session turned read-only (as a demoted primary's are) between two of
    its rounds, by the relay's own task: no race with its statements."""
    settings = make_settings(retry_backoff_max_seconds=0.2)
    await create_topics(Clients(settings))
    demote = asyncio.Event()
    read = outbox.first_page_fenced

    async def demoted_first(conn: Connection, limit: int, key: int) -> Any:
        if demote.is_set():
            demote.clear()
            await conn.execute("SET default_transaction_read_only = on")
        return await read(conn, limit, key)

    monkeypatch.setattr(outbox, "first_page_fenced", demoted_first)
    producer = Clients(settings).producer()
    await producer.start()
    relay = Relay(settings, pool, producer)  # stops the producer when it ends
    with capture_logs() as logs:
        async with Outcomes(settings) as published, relaying(relay):
            await wait_until(lambda: _true(relay.leads), within=30)
            demote.set()

            async def let_go() -> bool:
                return any(
                    e["event"] == "relay_retry" and "ReadOnlySQLTransactionError" in e["error"]
                    for e in logs
                )

            await wait_until(let_go, within=20)
            await add_rows(pool, [(b"customer-1", b"after the demotion")])
            await published.wait_for(lambda o: len(o.records) >= 1, within=30)
    assert [r.value for r in published.records] == [b"after the demotion"]


async def _true(value: bool) -> bool:
    return value


@pytest.mark.timeout(240)
async def test_after_a_switchover_with_an_empty_outbox_the_new_primary_s_rows_are_published(
    make_settings: Any, servers: Servers
) -> None:
    """The real thing on the HA pair (`stack.sh switchover ha`): two relays, one leading, both
    connected to the primary, which is then left running read-only while its standby is
    promoted; a row committed on the new primary is published."""
    async with ha_pair.exclusive():
        dsn = await ha_pair.fresh_pair_database()
        settings = make_settings(
            database_url=dsn, retry_backoff_max_seconds=0.5, kafka_produce_timeout_seconds=3
        )
        await create_topics(Clients(settings))
        pools = [await postgres.create_pool(dsn, size=2) for _ in range(2)]
        producers = [Clients(settings).producer() for _ in pools]
        for producer in producers:
            await producer.start()
        # Each relay stops its producer when it ends.
        relays = [Relay(settings, pool, p) for pool, p in zip(pools, producers, strict=True)]
        try:
            async with (
                Outcomes(settings) as published,
                relaying(relays[0]),
                relaying(relays[1]),
            ):
                await wait_until(lambda: _true(any(r.leads for r in relays)), within=30)
                await ha_pair.stack("switchover", "ha")
                writer = await asyncpg.connect(dsn)
                try:
                    port = await writer.fetchval("SELECT inet_server_port()")
                    await writer.execute(
                        "INSERT INTO outbox (event_id, key, value) "
                        "VALUES (gen_random_uuid(), 'customer-1', 'on the new primary')"
                    )
                finally:
                    await writer.close()
                await published.wait_for(lambda o: len(o.records) >= 1, within=60)
        finally:
            for pool in pools:
                await pool.close()
            await ha_pair.stack("rejoin", "ha")
    assert port == ha_pair.STANDBY_PORT
    assert [r.value for r in published.records] == [b"on the new primary"]
