"""The servers the suite runs against are real: a Kafka round trip and PostgreSQL transactions."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.servers import Servers

pytestmark = pytest.mark.integration


async def test_a_message_produced_to_a_new_topic_is_consumed_back(servers: Servers) -> None:
    topic = f"smoke.{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"hello")


async def test_a_committed_transaction_persists_and_a_rolled_back_one_does_not(
    fresh_dsn: str,
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute("CREATE TABLE smoke (n int)")
        async with conn.transaction():
            await conn.execute("INSERT INTO smoke VALUES (1)")
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.execute("INSERT INTO smoke VALUES (2)")
                raise RuntimeError("roll back")
        assert [tuple(r) for r in await conn.fetch("SELECT n FROM smoke")] == [(1,)]
    finally:
        await conn.close()
