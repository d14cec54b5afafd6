"""Reading whole partitions from their beginning up to a fixed end, outside any group: what a
rebuild or a restore reads, never moving anyone's committed offsets.

Raises aiokafka's `KafkaError` subclasses when the broker cannot be reached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

FETCH_TIMEOUT_MS = 1000


async def partition_ends(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return ends


async def read_until(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> AsyncIterator[list[ConsumerRecord[Any, Any]]]:
    """Batches of records of every partition of `ends`, each batch of one partition, each
    partition in offset order, from its beginning up to (not including) its end offset.
    `consumer` is started, in no group."""
    todo = {tp: end for tp, end in ends.items() if end > 0}
    if not todo:
        return
    consumer.assign(list(todo))
    await consumer.seek_to_beginning(*todo)
    for tp in list(todo):
        # Retention may have deleted everything up to the end.
        if await consumer.position(tp) >= todo[tp]:
            del todo[tp]
    while todo:
        fetched = await consumer.getmany(*todo, timeout_ms=FETCH_TIMEOUT_MS)
        for tp, records in fetched.items():
            end = todo.get(tp)
            if end is None:
                continue
            kept = [r for r in records if r.offset < end]
            if kept:
                yield kept
            if (records and records[-1].offset >= end - 1) or await consumer.position(tp) >= end:
                del todo[tp]
                consumer.pause(tp)
