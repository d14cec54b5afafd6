"""No wait without a bound (real Kafka and PostgreSQL): a frozen instance holding a customer's
lock is cut off by the server, and the batch waiting behind it fails its lock wait after
`lock_timeout`, retries, and is decided; a dead letter as large as the largest input the broker
accepts is never refused for its size."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

import schemas
from service.adapters.kafka.admin import topic_configs
from service.adapters.kafka.sizes import DLQ_MAX_MESSAGE_BYTES
from service.bootstrap.factory import Clients
from service.bootstrap.service import Service
from tests.fault.test_outages import unreachable
from tests.fault.tools import fetchval, outcomes_by_payment, wait_drained, wait_until, wall_now
from tests.harness import Outcomes, Producer, running
from tests.servers import Servers

pytestmark = pytest.mark.fault

LOCK_TIMEOUT = 1.0
IDLE_IN_TRANSACTION = 3.0


@pytest.mark.timeout(90)
async def test_a_frozen_lock_holder_is_cut_off_and_the_batch_behind_it_decided_within_bounds(
    make_settings: Any,
) -> None:
    settings = make_settings(
        db_lock_timeout_seconds=LOCK_TIMEOUT,
        db_idle_in_transaction_timeout_seconds=IDLE_IN_TRANSACTION,
        retry_backoff_max_seconds=0.5,
        poison_retries=1,
    )
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    frozen_pool = await Clients(settings).pool(size=1)
    try:
        with capture_logs() as logs:
            async with (
                Outcomes(settings) as outcomes,
                Producer(settings) as producer,
                running(settings),
            ):
                # Warm up first: the frozen session's clock starts only once the group consumes.
                await producer.pay(uuid.uuid4(), "warm-up", time=wall_now(), partition=0)
                await outcomes.wait_for(lambda o: "warm-up" in outcomes_by_payment(o.events))
                # Another instance, frozen (a stopped process, a partitioned host) inside its
                # transaction while it holds alice's lock: a session with the service's settings.
                frozen = await frozen_pool.acquire()
                await frozen.execute("INSERT INTO customers (id) VALUES ($1)", alice)
                await frozen.execute("BEGIN")
                await frozen.execute("SELECT id FROM customers WHERE id = $1 FOR UPDATE", alice)
                frozen_at = time.monotonic()
                for customer, payment_id in [(bob, "bob"), (alice, "alice"), (carol, "carol")]:
                    await producer.pay(customer, payment_id, time=wall_now(), partition=0)
                await outcomes.wait_for(
                    lambda o: {"bob", "alice", "carol"} <= set(outcomes_by_payment(o.events)),
                    within=30,
                )
                decided_after = time.monotonic() - frozen_at
                await wait_drained(settings)
        # The frozen session was ended by the server, which released alice's lock; the batch's
        # lock waits each failed after lock_timeout and were retried as an outage would be.
        with pytest.raises((OSError, Exception)):
            await asyncio.wait_for(frozen.fetchval("SELECT 1"), 5)
        retries = [e for e in logs if e["event"] == "decide_retry"]
        assert retries and all("LockNotAvailable" in e["error"] for e in retries)
        assert decided_after < IDLE_IN_TRANSACTION + LOCK_TIMEOUT + 8
        assert await fetchval(settings.dsn, "SELECT count(*) FROM parked_events") == 0
        assert outcomes_by_payment(outcomes.events) == {
            p: [schemas.SESSION_CREATED] for p in ("warm-up", "bob", "alice", "carol")
        }
    finally:
        frozen_pool.terminate()


@pytest.mark.timeout(60)
async def test_a_dead_letter_as_large_as_the_largest_input_is_accepted_and_the_partition_moves_on(
    make_settings: Any,
) -> None:
    settings = make_settings()
    # Just under the broker's default limit for the input topic, over it once the DLQ's error
    # headers are added: refused by a DLQ sized like the input topics.
    huge = b"[" + b"0," * 524_198 + b"0]"  # 1,048,399 bytes: the broker's limit is 1,048,588
    customer = uuid.uuid4()
    async with (
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),
    ):
        await producer.send(settings.topic_payments, huge, key=b"k", partition=0)
        await producer.pay(customer, "after-huge", time=wall_now(), partition=0)
        await dlq.wait_for(lambda o: len(o.records) >= 1, within=30)
        await outcomes.wait_for(lambda o: "after-huge" in outcomes_by_payment(o.events))
        async with Clients(settings).started_admin() as admin:
            configs = await topic_configs(admin, settings.topic_dlq)
    (record,) = dlq.records
    assert record.value == huge
    assert dict(record.headers)[schemas.DLQ_ERROR_KIND] == b"not_cloudevent"
    assert configs["max.message.bytes"] == str(DLQ_MAX_MESSAGE_BYTES)


@pytest.mark.timeout(120)
async def test_a_stop_during_a_database_outage_returns_within_a_bound_and_loses_nothing(
    make_settings: Any, servers: Servers
) -> None:
    # The relay stopped during the outage cannot record a clean end: the next one waits out
    # the produce timeout (plus 2 s) before its first send, kept short here.
    settings = make_settings(retry_backoff_max_seconds=1.0, kafka_produce_timeout_seconds=5)
    customer = uuid.uuid4()
    with capture_logs() as logs:
        async with Outcomes(settings) as outcomes, Producer(settings) as producer:
            service = Service(settings)
            task = asyncio.create_task(service.run())
            try:
                # Running first: an outage during start-up is a failed start, not this test.
                await producer.pay(uuid.uuid4(), "warm-up", time=wall_now(), partition=0)
                await outcomes.wait_for(lambda o: "warm-up" in outcomes_by_payment(o.events))
                async with unreachable(servers, settings.dsn):
                    await producer.pay(customer, "during-outage", time=wall_now(), partition=0)

                    async def retrying() -> bool:
                        return any(e["event"] == "decide_retry" for e in logs)

                    await wait_until(retrying, within=30)
                    asked = time.monotonic()
                    service.stop()  # what SIGTERM does
                    await asyncio.wait_for(asyncio.shield(task), 60)
                    stopped_in = time.monotonic() - asked
            finally:
                service.stop()
                await asyncio.wait_for(task, 60)
            async with running(settings):  # the database is back
                await outcomes.wait_for(lambda o: "during-outage" in outcomes_by_payment(o.events))
                await wait_drained(settings)
    assert stopped_in < 30, f"stopping took {stopped_in:.1f} s"
    # At least once: the outage may cut the relay off between a publish and its delete, so a
    # row can be published again, with the same id. One outcome each, by id.
    distinct = list({e.id: e for e in outcomes.events}.values())
    assert outcomes_by_payment(distinct) == {
        p: [schemas.SESSION_CREATED] for p in ("warm-up", "during-outage")
    }
