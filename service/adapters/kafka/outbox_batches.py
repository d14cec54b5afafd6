"""One relay round's batches, one per output partition, filled from outbox rows in seq order."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.content_modes import binary_from_structured
from service.adapters.kafka.murmur2 import murmur2
from service.adapters.kafka.trace_context import headers_for
from service.adapters.postgres import outbox
from service.adapters.postgres.pool import Connection

MAX_PAGES = 4


class RoundBatches:
    """One round's batches: aiokafka's batch API, one builder per partition filled in seq order
    (far cheaper than one `send()` coroutine per message). A partition blocked, or whose batch
    is full, takes none of its later rows."""

    def __init__(
        self, producer: AIOKafkaProducer, partitions: int, blocked: set[int], *, binary: bool
    ) -> None:
        self._producer = producer
        self._partitions = partitions
        self._blocked = blocked
        self._binary = binary  # rows hold structured-mode bytes; re-encoded for binary mode
        self.by_partition: dict[int, tuple[Any, list[int], list[str]]] = {}
        self.taken = 0
        self.seen = 0
        self.more = False  # rows were left for the next round

    def add(self, rows: list[asyncpg.Record]) -> None:
        self.seen += len(rows)
        for row in rows:
            partition = partition_for(row["key"], self._partitions)
            if partition in self._blocked:
                continue
            if partition not in self.by_partition:
                self.by_partition[partition] = (self._producer.create_batch(), [], [])
            builder, seqs, traced = self.by_partition[partition]
            value: bytes = row["value"]
            headers = headers_for(row["traceparent"])
            if self._binary:
                attributes, value = binary_from_structured(value)
                headers = [*attributes, *headers]
            appended = builder.append(key=row["key"], value=value, timestamp=None, headers=headers)
            if appended is not None:
                seqs.append(row["seq"])
                if row["traceparent"]:
                    traced.append(row["traceparent"])
                self.taken += 1
            else:
                self._blocked.add(partition)
                self.more = True


async def read_pages(conn: Connection, batches: RoundBatches, limit: int) -> bool:
    """Fills `batches` from up to `MAX_PAGES` pages of `limit` rows, all read in one snapshot
    (outbox.snapshot says why), until they took `limit` rows. Returns whether the first page
    was full."""
    after, first_full = 0, False
    async with outbox.snapshot(conn):
        for page in range(MAX_PAGES):
            rows = await outbox.next_outbox(conn, limit, after)
            first_full = first_full or (page == 0 and len(rows) == limit)
            batches.add(rows)
            if len(rows) < limit:
                break
            batches.more = True
            if batches.taken >= limit:
                break
            after = rows[-1]["seq"]
    return first_full


CACHED_KEYS = 65_536
_partition_of: dict[int, dict[bytes, int]] = {}  # by partition count, by key


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for `key` (murmur2, as the Java client),
    so other producers keying by customer id land on the same partitions. Cached: a customer's
    key recurs, and murmur2 in Python is not cheap. In a plain dict, emptied once it holds
    `CACHED_KEYS` keys: half the memory of `functools.lru_cache`, which keeps an argument tuple
    and a link per key."""
    known = _partition_of.setdefault(partitions, {})
    found = known.get(key)
    if found is None:
        if len(known) >= CACHED_KEYS:
            known.clear()
        found = known[key] = int(murmur2(key) & 0x7FFFFFFF) % partitions
    return found
