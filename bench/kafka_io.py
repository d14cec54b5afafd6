"""The benchmark's Kafka ends: a fast batched producer for preloading input, and a reader of
`sessions.events` that tells which payments have their outcome and when.

Raises aiokafka's KafkaError subclasses when the broker is unreachable or refuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import schemas
from bench.service_api import Message, partition_for

OUTCOME_TYPES = frozenset({schemas.SESSION_CREATED, schemas.SESSION_REJECTED})


async def produce_all(bootstrap: str, messages: Sequence[Message]) -> float:
    """Sends every message, partitioned as Kafka's default partitioner would by key, through
    aiokafka's batch API (one `send()` coroutine per message would take longer than the drain);
    returns the seconds it took, all acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, max_batch_size=512 * 1024, linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        partitions: dict[str, int] = {}
        builders: dict[tuple[str, int], Any] = {}
        delivered = []
        for message in messages:
            if message.topic not in partitions:
                partitions[message.topic] = len(await producer.partitions_for(message.topic))
            key = message.key or b""
            where = (message.topic, partition_for(key, partitions[message.topic]))
            builder = builders.get(where)
            if builder is None:
                builder = builders[where] = producer.create_batch()
            headers = list(message.headers)
            if (
                builder.append(
                    key=message.key, value=message.value, timestamp=None, headers=headers
                )
                is None
            ):
                delivered.append(await producer.send_batch(builder, where[0], partition=where[1]))
                builder = builders[where] = producer.create_batch()
                builder.append(
                    key=message.key, value=message.value, timestamp=None, headers=headers
                )
        for (topic, partition), builder in builders.items():
            delivered.append(await producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*delivered)
        return time.perf_counter() - started
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Outcome:
    type: str
    payment_id: str | None  # set for session.created / session.rejected
    timestamp: float  # the record's CreateTime (set by the relay's producer), epoch seconds
    arrived: float  # when this reader received it, epoch seconds


def parse(record: Any, arrived: float) -> Outcome:
    event = orjson.loads(record.value)
    type_ = str(event.get("type"))
    payment_id = event["data"]["payment_id"] if type_ in OUTCOME_TYPES else None
    return Outcome(type_, payment_id, record.timestamp / 1000, arrived)


class OutcomeReader:
    """Reads every partition of one topic by manual assignment (no group, no commits)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._partitions: list[TopicPartition] = []

    async def start(self, *, partitions: int, from_end: bool) -> None:
        """`partitions`: the topic's count (the bench created it; a consumer without a group
        has no metadata for a topic it has not fetched from yet)."""
        await self._consumer.start()
        self._partitions = [TopicPartition(self._topic, p) for p in range(partitions)]
        self._consumer.assign(self._partitions)
        if from_end:
            await self._consumer.seek_to_end(*self._partitions)
        else:
            await self._consumer.seek_to_beginning(*self._partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self._partitions)
        return ends

    async def total(self) -> int:
        """Records on the topic so far: cheap (one metadata request), reads nothing."""
        return sum((await self.end_offsets()).values())

    async def fetch(self, timeout_ms: int = 100) -> list[Outcome]:
        """What arrived since the last call, each stamped with the time of its arrival."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        arrived = time.time()
        return [parse(r, arrived) for records in batches.values() for r in records]

    async def read_to(self, ends: dict[TopicPartition, int], *, within: float) -> list[Outcome]:
        """Everything up to `ends`; raises TimeoutError after `within` seconds."""
        out: list[Outcome] = []
        async with asyncio.timeout(within):
            while not await self._reached(ends):
                out.extend(await self.fetch())
        return out

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            position: int = await self._consumer.position(tp)
            if position < end:
                return False
        return True
