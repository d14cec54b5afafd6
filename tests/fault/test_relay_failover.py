"""Leadership moving while a batch is in flight (real Kafka and PostgreSQL): the former
leader's batch, handed to its producer but not yet on the broker, never lands after what the
new leader sent since, so a customer's outputs keep their order across the change.

The batch in flight is made deterministic: the former leader's producer lingers 20 s before
it sends (`linger_ms`, its batches kept open although the relay closes them to be sent at
once), as a batch held up by a slow network or a broker retrying would; its
PostgreSQL session is ended by `pg_terminate_backend`, which frees the leader's lock at once,
and its pool closed, so that it stays cut off from the database (as an instance partitioned
from it would) and the other relay is the one that takes over.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.adapters.postgres import sql
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from tests.fault.test_relay_faults import add_rows, keys_by_partition
from tests.fault.tools import wait_until
from tests.harness import Outcomes

pytestmark = pytest.mark.fault

LINGER = 20.0
LEADER_PID = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND ((classid::bigint << 32) | objid::bigint) = $1"
)


@pytest.mark.timeout(120)
async def test_a_former_leader_s_batch_in_flight_never_lands_after_the_new_leader_s_outputs(
    make_settings: Any, pool: postgres.Pool, fresh_dsn: str
) -> None:
    settings = make_settings(kafka_produce_timeout_seconds=5)
    await create_topics(Clients(settings))
    customer = keys_by_partition(settings.topic_partitions)[0][0]

    def slow() -> AIOKafkaProducer:
        producer = Clients(settings).producer(linger_ms=int(LINGER * 1000))
        create = producer.create_batch

        def open_batch() -> Any:
            batch = create()
            batch.close = lambda: None  # aiokafka sends a closed batch without its linger
            return batch

        producer.create_batch = open_batch
        return producer

    former_producer, new_producer = slow(), Clients(settings).producer()
    await former_producer.start()
    await new_producer.start()
    former_pool = await postgres.create_pool(fresh_dsn, size=1)
    former = Relay(settings, former_pool, former_producer, new_producer=slow)
    new = Relay(settings, pool, new_producer)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with Outcomes(settings) as published:
            await add_rows(pool, [(customer, b"first")])
            tasks.append(asyncio.create_task(former.run()))

            async def leading() -> bool:
                return await pool.fetchval(LEADER_PID, sql.RELAY_LOCK_KEY) is not None

            await wait_until(leading)
            await asyncio.sleep(1)  # its first round has handed "first" to its producer
            handed = time.monotonic()
            assert not published.records  # still lingering in the former leader's producer
            pid = await pool.fetchval(LEADER_PID, sql.RELAY_LOCK_KEY)
            await pool.execute("SELECT pg_terminate_backend($1)", pid)
            former_pool.terminate()
            tasks.append(asyncio.create_task(new.run()))
            await wait_until(leading)
            await add_rows(pool, [(customer, b"second")])  # the customer's next decision
            await published.wait_for(lambda o: b"second" in [r.value for r in o.records], 60)
            # Past the moment the former leader's producer would have sent its batch.
            await asyncio.sleep(max(0.0, handed + LINGER + 3 - time.monotonic()))
            values = [r.value for r in published.records]
    finally:
        for relay in (former, new):
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        former_pool.terminate()
        await former_producer.stop()
        await new_producer.stop()
    assert b"first" in values, values
    last_first = max(i for i, v in enumerate(values) if v == b"first")
    assert last_first < values.index(b"second"), values
