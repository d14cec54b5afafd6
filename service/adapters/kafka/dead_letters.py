"""Reading the dead-letter topic back, and putting a dead letter back on its original topic.

A dead letter is named by where it came from, `TOPIC:PARTITION:OFFSET` of the original message
(its `fulfillment-source-*` headers), the coordinates the `dead_lettered` log line gives. The
DLQ may hold one message twice (a crash between its produce and the offset commit); both name
the same origin, and the later one is kept.

Raises aiokafka's `KafkaError` subclasses when the broker cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import schemas
from service.adapters.kafka.consumer import Record

READ_TIMEOUT_MS = 1000
REDRIVE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: str  # TOPIC:PARTITION:OFFSET of the original message
    source_topic: str
    kind: str
    reason: str
    failed_at: str
    dlq_partition: int
    dlq_offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]  # the original's, without the error headers

    @property
    def failed_at_time(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.failed_at)
        except ValueError:
            return None


def parse_origin(text: str) -> str:
    """`TOPIC:PARTITION:OFFSET`, checked; raises ValueError naming what is wrong."""
    topic, _, rest = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not partition.isdigit() or not rest.isdigit():
        raise ValueError(f"{text!r} is not TOPIC:PARTITION:OFFSET (e.g. payments.completed:0:42)")
    return f"{topic}:{int(partition)}:{int(rest)}"


async def read_dead_letters(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    *,
    since: datetime | None = None,
) -> list[DeadLetter]:
    """Every dead letter on the DLQ's `partitions` (read by a started consumer with no group),
    oldest first per partition; from `since` on (when they were dead-lettered) when given."""
    if not partitions:
        return []
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    if since is None:
        await consumer.seek_to_beginning(*partitions)
    else:
        starts = await consumer.offsets_for_times(
            {tp: int(since.timestamp() * 1000) for tp in partitions}
        )
        for tp in partitions:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
    partitions = list(partitions)
    found_letters: dict[str, DeadLetter] = {}
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        batch = await consumer.getmany(*partitions, timeout_ms=READ_TIMEOUT_MS)
        for records in batch.values():
            for record in records:
                if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                    continue
                letter = _letter(record)
                if since is not None and (letter.failed_at_time or since) < since:
                    continue
                found_letters.pop(letter.origin, None)
                found_letters[letter.origin] = letter
    return list(found_letters.values())


def _letter(record: Record) -> DeadLetter:
    headers = [(k, None if v is None else bytes(v)) for k, v in record.headers]
    ours = {
        k: v.decode("utf-8", "replace")
        for k, v in headers
        if k in schemas.DLQ_HEADERS and v is not None
    }
    topic = ours.get(schemas.DLQ_SOURCE_TOPIC, "?")
    origin = (
        f"{topic}:{ours.get(schemas.DLQ_SOURCE_PARTITION, '?')}"
        f":{ours.get(schemas.DLQ_SOURCE_OFFSET, '?')}"
    )
    return DeadLetter(
        origin=origin,
        source_topic=topic,
        kind=ours.get(schemas.DLQ_ERROR_KIND, ""),
        reason=ours.get(schemas.DLQ_ERROR_REASON, ""),
        failed_at=ours.get(schemas.DLQ_FAILED_AT, ""),
        dlq_partition=record.partition,
        dlq_offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple((k, v) for k, v in headers if k not in schemas.DLQ_HEADERS),
    )


async def redrive(
    producer: AIOKafkaProducer, letters: Sequence[DeadLetter]
) -> list[tuple[DeadLetter, str]]:
    """Publish each letter's original value, key and headers (no error headers) to its original
    topic, in order; returns each with where it landed (TOPIC:PARTITION:OFFSET)."""
    sent = [
        await producer.send(
            letter.source_topic, value=letter.value, key=letter.key, headers=list(letter.headers)
        )
        for letter in letters
    ]
    delivered = await asyncio.wait_for(asyncio.gather(*sent), REDRIVE_TIMEOUT)
    return [
        (letter, f"{meta.topic}:{meta.partition}:{meta.offset}")
        for letter, meta in zip(letters, delivered, strict=True)
    ]
