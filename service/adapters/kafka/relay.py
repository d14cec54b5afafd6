"""The outbox relay: publishes committed outbox rows to `sessions.events` in commit order.

One relay publishes at a time across all instances (a session-level advisory lock held on the
relay's own connection), reading rows in `seq` order: a customer's later transaction can only
start after the earlier one committed (the customer lock), so its rows always carry larger seqs,
and one in-flight batch per partition in the idempotent producer keeps that order on the wire.
If the leader's connection drops, its lock goes with it and another instance takes over; rows
it had sent but not yet deleted are sent again, with the same ids (at-least-once). For the same
reason its deletes commit without waiting for the WAL flush: a server crash can only bring back
rows that were already sent, so a slow fsync never holds up the next round.

Each partition stands alone: a batch the broker refuses or cannot take (its leader gone, a
record over the topic's size) leaves that partition's rows in the outbox, held back for a
while, and every other partition keeps publishing; rows behind held ones are read page by page
(up to `MAX_PAGES` pages a round). Before each send the leader checks, on its own connection,
that it still holds the lock (a fence): a leader whose connection died cannot send rows another
leader is already sending. What remains is a send already on the wire when the connection
dies: the server frees the lock only once it notices (TCP keepalives, about a minute by
default), by which time that send has been acknowledged or has failed
(`FULFILLMENT_KAFKA_PRODUCE_TIMEOUT_SECONDS`), so
at worst the new leader repeats rows the old one published, with the same ids. A producer that
aiokafka has failed for good (closed, fenced, out of sequence) is replaced by a new one.

Raises nothing out of `run`: broker and database faults are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from schemas.content_modes import binary_from_structured
from service.adapters import metrics
from service.adapters.health import Health
from service.adapters.kafka.murmur2 import murmur2
from service.adapters.kafka.trace_context import headers_for
from service.adapters.postgres import outbox, sql
from service.adapters.postgres.pool import Connection, Pool
from service.adapters.retry import retrying
from service.adapters.tracing import NO_TRACING, Tracing
from service.settings import Settings

log = structlog.get_logger("service.relay")

MAX_PAGES = 4
REPLACE_AFTER = 3
# After these the idempotent producer cannot send again: it is replaced.
PRODUCER_BROKEN = (
    ProducerClosed,
    ProducerFenced,
    IllegalStateError,
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    UnknownProducerId,
)


class LostLeadership(ConnectionError):
    """The relay's connection no longer holds the leader's lock: an outage, retried."""


class Relay:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        producer: AIOKafkaProducer,
        *,
        health: Health | None = None,
        tracing: Tracing = NO_TRACING,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        """`new_producer` builds a replacement for a producer that failed for good (the
        relay then owns and stops the replacements); without it such a failure is retried."""
        self._settings = settings
        self._tracing = tracing
        self._health = health or Health()
        self._pool = pool
        self._producer = producer
        self._new_producer = new_producer
        self._own_producer = False
        self._held: dict[int, float] = {}  # partition -> monotonic time until it is held back
        self._failed_rounds = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0
        # Rows hold structured-mode bytes; binary mode re-encodes them at publish time.
        self._binary = settings.output_content_mode == "binary"

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
            async for attempt in retrying("relay", cap=cap, stop=give_up, health=self._health):
                with attempt:
                    await self._lead()
        except Exception as error:
            log.error("relay_stopped_with_unpublished_rows", error=repr(error))
        finally:
            if self._own_producer:
                await self._producer.stop()

    async def _lead(self) -> None:
        async with self._pool.acquire() as conn:
            await outbox.prepare_relay_connection(conn)
            self._health.recovered("relay")
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
        try:
            sent, delivered, failed = await self._publish_round(conn)
        except (TimeoutError, *PRODUCER_BROKEN) as error:
            await self._producer_failed(error)
            raise
        if delivered:
            self._failed_rounds = 0
        elif failed is not None:
            await self._producer_failed(failed)
        return sent

    async def _producer_failed(self, error: Exception) -> None:
        """A round in which the producer delivered nothing. aiokafka's producer, once failed
        for good, may raise or may just never answer: either way it is replaced, at once for an
        error that says so, after `REPLACE_AFTER` such rounds in a row otherwise."""
        self._failed_rounds += 1
        if self._new_producer is None:
            return
        if isinstance(error, PRODUCER_BROKEN) or self._failed_rounds >= REPLACE_AFTER:
            await self._replace_producer(error)

    async def _publish_round(self, conn: Connection) -> tuple[int, bool, Exception | None]:
        """(what `_publish` returns, whether anything was delivered, a failure if any)."""
        limit = self._settings.relay_batch_size
        topic = self._settings.topics.sessions_events
        timeout = self._settings.kafka_produce_timeout_seconds
        count = len(await asyncio.wait_for(self._producer.partitions_for(topic), timeout))
        now = time.monotonic()
        # A partition held back, or whose batch is full, has all its later rows wait too: a
        # customer's later events never overtake earlier ones.
        blocked = {p for p, until in self._held.items() if until > now}
        # aiokafka's batch API: one builder per partition filled in seq order; far cheaper than
        # one `send()` coroutine per message. At most one batch per partition in flight.
        builders: dict[int, Any] = {}
        seqs: dict[int, list[int]] = {}
        traced: dict[int, list[str]] = {}
        after, taken, more = 0, 0, False
        for _ in range(MAX_PAGES):
            rows = await outbox.next_outbox(conn, limit, after)
            for row in rows:
                partition = partition_for(row["key"], count)
                if partition in blocked:
                    continue
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = self._producer.create_batch()
                value: bytes = row["value"]
                headers = headers_for(row["traceparent"])
                if self._binary:
                    attributes, value = binary_from_structured(value)
                    headers = [*attributes, *headers]
                if (
                    builder.append(key=row["key"], value=value, timestamp=None, headers=headers)
                    is None
                ):
                    blocked.add(partition)
                    more = True
                    continue
                seqs.setdefault(partition, []).append(row["seq"])
                if row["traceparent"]:
                    traced.setdefault(partition, []).append(row["traceparent"])
                taken += 1
            if len(rows) < limit:
                break
            more = True
            if taken >= limit:
                break
            after = rows[-1]["seq"]
        if not taken:
            return (limit if more and not self._held else 0), False, None
        if not await outbox.holds_lock(conn, sql.RELAY_LOCK_KEY):
            raise LostLeadership("the relay's connection no longer holds the leader's lock")
        sent = {p: seqs[p] for p in builders if p in seqs}
        sent_ns = time.time_ns()
        outcomes = await self._send(topic, {p: builders[p] for p in sent})
        delivered = [p for p, error in outcomes.items() if error is None]
        if self._tracing is not NO_TRACING:
            acknowledged = [t for p in delivered for t in traced.get(p, ())]
            self._tracing.published(acknowledged, sent=sent_ns, acknowledged=time.time_ns())
        await outbox.delete_outbox(conn, [seq for p in delivered for seq in sent[p]])
        published = sum(len(sent[p]) for p in delivered)
        self.published += published
        metrics.published.inc(published)
        failure = await self._hold_failed(outcomes)
        count_sent = limit if more else sum(len(sent[p]) for p in delivered)
        return count_sent, bool(delivered), failure

    async def _send(self, topic: str, builders: dict[int, Any]) -> dict[int, Exception | None]:
        """Each partition's batch; its error, or None once the broker acknowledged it."""
        timeout = self._settings.kafka_produce_timeout_seconds
        async with asyncio.timeout(timeout):
            futures = {
                p: await self._producer.send_batch(builder, topic, partition=p)
                for p, builder in builders.items()
            }
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*futures.values(), return_exceptions=True), timeout
            )
        except TimeoutError as error:
            return dict.fromkeys(futures, error)
        return {
            p: r if isinstance(r, Exception) else None
            for p, r in zip(futures, results, strict=True)
        }

    async def _hold_failed(self, outcomes: dict[int, Exception | None]) -> Exception | None:
        """Hold back the partitions whose batch failed; returns one of their errors."""
        failed = {p: e for p, e in outcomes.items() if e is not None}
        for partition in outcomes:
            if partition not in failed:
                self._held.pop(partition, None)
        hold = min(self._settings.retry_backoff_max_seconds, 5.0)
        for partition, error in failed.items():
            self._held[partition] = time.monotonic() + hold
            log.warning("relay_partition_failed", partition=partition, error=repr(error))
        errors: list[Exception] = list(failed.values())
        errors.sort(key=lambda e: not isinstance(e, PRODUCER_BROKEN))  # one that says so first
        return errors[0] if errors else None

    async def _replace_producer(self, error: Exception) -> None:
        log.warning("relay_producer_replaced", error=repr(error))
        old, owned = self._producer, self._own_producer
        self._producer = self._new_producer() if self._new_producer else old
        await self._producer.start()
        self._own_producer = True
        self._held.clear()
        self._failed_rounds = 0
        if owned:
            with contextlib.suppress(Exception):
                await old.stop()


@functools.lru_cache(maxsize=65_536)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for `key` (murmur2, as the Java client),
    so other producers keying by customer id land on the same partitions. Cached: a customer's
    key recurs, and murmur2 in Python is not cheap."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
