"""Reading the dead-letter topic back, and putting dead letters back on their original topics.

A dead letter is named by where it came from, `TOPIC:PARTITION:OFFSET` of the message that
failed (its `fulfillment-source-*` headers), the coordinates the `dead_lettered` log line gives,
and belongs to the lineage of its original (`schemas.DLQ_ORIGINAL`: where that message first
failed). The DLQ is read as a stream (`scan`), a batch at a time, never held whole; a redrive
sends as it reads, with a bounded number of bytes awaiting acknowledgement (`Redriver`).

Raises aiokafka's `KafkaError` subclasses when the broker cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

import schemas
import schemas.dlq
from service.adapters.kafka.topic_reader import read_until

REDRIVE_TIMEOUT = 30.0
# What a redrive lets wait for the broker's acknowledgement before it reads on.
MAX_UNACKED_BYTES = 4 * 1024 * 1024
MAX_UNACKED_RECORDS = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: str  # TOPIC:PARTITION:OFFSET of the message that failed
    original: str  # TOPIC:PARTITION:OFFSET where that message first failed
    source_topic: str
    kind: str
    reason: str
    failed_at: str
    failed_at_seconds: float  # failed_at, or the record's timestamp when that is unreadable
    placeholder: bool  # the original was too large to copy: the value says where it is
    dlq_partition: int
    dlq_offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]  # the original's, without `fulfillment-*`


def parse_origin(text: str) -> str:
    """`TOPIC:PARTITION:OFFSET`, checked; raises ValueError naming what is wrong."""
    return schemas.dlq.parse_origin(text)


async def scan(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]
) -> AsyncGenerator[DeadLetter, None]:
    """Every dead letter up to `ends` (fixed by the caller, so two scans see the same letters),
    oldest first per partition; `consumer` is started, in no group."""
    async for records in read_until(consumer, ends):
        for record in records:
            yield _letter(record)


def _letter(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    headers = [(k, None if v is None else bytes(v)) for k, v in record.headers]
    ours = {
        k: v.decode("utf-8", "replace")
        for k, v in headers
        if k.startswith(schemas.DLQ_HEADER_PREFIX) and v is not None
    }
    topic = ours.get(schemas.DLQ_SOURCE_TOPIC, "?")
    partition = ours.get(schemas.DLQ_SOURCE_PARTITION, "?")
    offset = ours.get(schemas.DLQ_SOURCE_OFFSET, "?")
    origin = f"{topic}:{partition}:{offset}"
    try:
        original = schemas.dlq.parse_origin(ours.get(schemas.DLQ_ORIGINAL, ""))
    except ValueError:  # a letter of an earlier version, or unreadable: its own original
        original = origin
    failed_at = ours.get(schemas.DLQ_FAILED_AT, "")
    return DeadLetter(
        origin=origin,
        original=original,
        source_topic=topic,
        kind=ours.get(schemas.DLQ_ERROR_KIND, ""),
        reason=ours.get(schemas.DLQ_ERROR_REASON, ""),
        failed_at=failed_at,
        failed_at_seconds=_seconds(failed_at, record.timestamp),
        placeholder=ours.get(schemas.DLQ_PLACEHOLDER) == "true",
        dlq_partition=record.partition,
        dlq_offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple((k, v) for k, v in headers if not k.startswith(schemas.DLQ_HEADER_PREFIX)),
    )


def _seconds(failed_at: str, timestamp_ms: int) -> float:
    try:
        when = datetime.fromisoformat(failed_at)
    except ValueError:
        return timestamp_ms / 1000
    return when.timestamp() if when.tzinfo is not None else timestamp_ms / 1000


class Redriver:
    """Publishes letters' original value, key and headers to their original topics, with the
    lineage header `schemas.DLQ_ORIGINAL` naming their original, as they are given; at most
    MAX_UNACKED_BYTES (or MAX_UNACKED_RECORDS) wait for the broker at a time."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._pending: list[tuple[asyncio.Future[Any], dict[str, object]]] = []
        self._pending_bytes = 0

    async def send(self, letter: DeadLetter, row: dict[str, object]) -> None:
        """Sends `letter`; `row["sent_to"]` is where it landed (TOPIC:PARTITION:OFFSET) once
        `flush` or a later `send` has seen it acknowledged."""
        headers = [*letter.headers, (schemas.DLQ_ORIGINAL, letter.original.encode())]
        sent = await self._producer.send(
            letter.source_topic, value=letter.value, key=letter.key, headers=headers
        )
        self._pending.append((sent, row))
        self._pending_bytes += len(letter.value or b"") + len(letter.key or b"")
        if self._pending_bytes >= MAX_UNACKED_BYTES or len(self._pending) >= MAX_UNACKED_RECORDS:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        delivered = await asyncio.wait_for(
            asyncio.gather(*(sent for sent, _ in pending)), REDRIVE_TIMEOUT
        )
        for (_, row), meta in zip(pending, delivered, strict=True):
            row["sent_to"] = schemas.dlq.origin_text(meta.topic, meta.partition, meta.offset)
