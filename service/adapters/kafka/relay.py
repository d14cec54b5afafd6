"""The outbox relay: publishes committed outbox rows to `sessions.events` in commit order.

One relay publishes at a time across all instances (a session-level advisory lock held on the
relay's own connection), reading rows in `seq` order: a customer's later transaction can only
start after the earlier one committed (the customer lock), so its rows always carry larger seqs,
and one in-flight batch per partition in the idempotent producer keeps that order on the wire.
If the leader's connection drops, its lock goes with it and another instance takes over; rows
it had sent but not yet deleted are sent again, with the same ids (at-least-once). For the same
reason its deletes commit without waiting for the WAL flush: a server crash can only bring back
rows that were already sent, so a slow fsync never holds up the next round.

Raises nothing out of `run`: broker and database faults are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from service.adapters.kafka.murmur2 import murmur2
from service.adapters.postgres import outbox, sql
from service.adapters.postgres.pool import Connection, Pool
from service.adapters.retry import retrying
from service.settings import Settings

log = structlog.get_logger("service.relay")


class Relay:
    def __init__(self, settings: Settings, pool: Pool, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Something was committed to the outbox: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish: publish what is already in the outbox, then return from `run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        cap = self._settings.retry_backoff_max_seconds
        # Keep trying through outages; once stopping, give up after a few attempts.
        give_up = lambda state: self._stopping.is_set() and state.attempt_number > 3  # noqa: E731
        try:
            async for attempt in retrying("relay", cap=cap, stop=give_up):
                with attempt:
                    await self._lead()
        except Exception as error:
            log.error("relay_stopped_with_unpublished_rows", error=repr(error))

    async def _lead(self) -> None:
        async with self._pool.acquire() as conn:
            await outbox.prepare_relay_connection(conn)
            await conn.add_listener(sql.OUTBOX_CHANNEL, self._notified)
            try:
                leader = False
                while True:
                    if not leader:
                        leader = await outbox.try_lock(conn, sql.RELAY_LOCK_KEY)
                        if leader:
                            log.info("relay_leading")
                    self._wake.clear()
                    sent = await self._publish(conn) if leader else 0
                    if sent == self._settings.relay_batch_size:
                        continue  # more is waiting
                    if self._stopping.is_set():
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), self._settings.relay_poll_interval_seconds
                        )
            finally:
                # On a dead connection these fail too; the error worth reporting is the first.
                with contextlib.suppress(Exception):
                    await conn.remove_listener(sql.OUTBOX_CHANNEL, self._notified)
                    if leader:
                        await outbox.unlock(conn, sql.RELAY_LOCK_KEY)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _publish(self, conn: Connection) -> int:
        rows = await outbox.next_outbox(conn, self._settings.relay_batch_size)
        if not rows:
            return 0
        topic = self._settings.topics.sessions_events
        count = len(await self._producer.partitions_for(topic))
        # aiokafka's batch API: one builder per partition filled in seq order; far cheaper than
        # one `send()` coroutine per message.
        builders: dict[int, Any] = {}
        taken = 0
        for row in rows:
            partition = partition_for(row["key"], count)
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = self._producer.create_batch()
            if builder.append(key=row["key"], value=row["value"], timestamp=None) is None:
                # At most one batch per partition in flight: were a first batch to fail and a
                # second to succeed, a customer's later events would overtake earlier ones.
                # This row and the rest wait for the next round.
                break
            taken += 1
        delivered = [
            await self._producer.send_batch(builder, topic, partition=partition)
            for partition, builder in builders.items()
        ]
        await asyncio.gather(*delivered)
        await outbox.delete_outbox(conn, [r["seq"] for r in rows[:taken]])
        self.published += taken
        # A full round (or one cut short by a full batch) means more may be waiting.
        return taken if taken == len(rows) else self._settings.relay_batch_size


@functools.lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for `key` (murmur2, as the Java client),
    so other producers keying by customer id land on the same partitions. Cached: a customer's
    key recurs, and murmur2 in Python is not cheap."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
