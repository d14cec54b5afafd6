"""The consumer loop: fetch a batch, decode, decide in one transaction, dead-letter what cannot
be decoded, and only then hand the batch's offsets over to be committed, in order, in the
background (offsets.py): the next fetch does not wait for the coordinator's answer.

A crash anywhere loses nothing: before the database commit the batch is simply redelivered;
between the database commit and the offset commit it is redelivered and every event is found
already claimed (dedupe), so nothing is decided twice.

Rebalances: the loop holds `batch_lock` from the moment it starts deciding a batch until its
offsets are handed over, and the revocation callback takes the same lock and then waits for
the offsets handed over to be committed, so a partition is handed over only after the work
fetched from it is committed (database and offsets) or abandoned (rolled back, not
committed). A batch that is waiting out a backoff when its partitions are revoked is
abandoned at once rather than holding up the group.

The fetch itself happens outside the lock: once a rebalance has begun, aiokafka's `getmany`
waits, whatever its timeout, until the new assignment arrives, and the assignment waits for the
revocation callback, which would wait for the lock. So a rebalance can complete between a fetch
and the decision. Under the lock the batch is therefore cut to the partitions this consumer
owns at that moment: the others' records were never committed, and their new owner fetches
them again from the committed offset. Records of a partition it still owns are decided even if
they were fetched before the rebalance; if the partition was reset to its committed offset
meanwhile, the copies fetched again are found already claimed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

import schemas
from service.adapters.kafka import offsets, trace_context
from service.adapters.kafka.producer_owner import ProducerOwner
from service.adapters.kafka.sizes import DLQ_MAX_MESSAGE_BYTES
from service.adapters.retry import retried
from service.config.settings import Settings
from service.core.ports import ContainBatch
from service.observe import batch_metrics
from service.observe.health import Health
from service.observe.logs import log_decisions, log_parked
from service.observe.tracing import NO_TRACING, Tracing

log = structlog.get_logger("service.consumer")

T = TypeVar("T")


class Record(Protocol):
    """The fields of aiokafka's ConsumerRecord this loop reads (aiokafka ships no types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int  # milliseconds since the epoch: CreateTime, as the producer stamped it
    headers: Sequence[tuple[str, bytes | None]]


class Abandoned(Exception):
    """The batch was given up (shutdown or revocation during a backoff); nothing committed."""


class _HandOver(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._loop.revoking.set()
        async with self._loop.batch_lock:
            self._loop.revoking.clear()
            # Hand over only what is committed: the offsets still on their way go first.
            await self._loop.commits.settled()
        log.info(
            "partitions_revoked", partitions=sorted(f"{p.topic}-{p.partition}" for p in revoked)
        )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._loop.joined = True
        log.info(
            "partitions_assigned", partitions=sorted(f"{p.topic}-{p.partition}" for p in assigned)
        )


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer | ProducerOwner,
        contain: ContainBatch,
        *,
        on_committed: Callable[[], None] = lambda: None,
        health: Health | None = None,
        tracing: Tracing = NO_TRACING,
        name: str = "consumer",
    ) -> None:
        self.name = name  # for readiness: which of an instance's consumers is backing off
        self._settings = settings
        self._tracing = tracing
        self._consumer = consumer
        self._producers = ProducerOwner.of(producer)  # replaced there for every user
        self._contain = contain
        self._on_committed = on_committed
        self._decoder = schemas.Decoder(settings.topics.input_types())
        self.batch_lock = asyncio.Lock()
        self.commits = offsets.OffsetCommitter(consumer)
        self.revoking = asyncio.Event()
        self._stopping = asyncio.Event()
        self._health = health or Health()
        self._types = settings.topics.input_types()
        # Readiness: the group has given this consumer its assignment (possibly empty, when
        # there are more consumers than partitions) at least once.
        self.joined = False

    def subscribe(self) -> None:
        inputs = list(self._settings.topics.input_types())
        self._consumer.subscribe(inputs, listener=_HandOver(self))

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished (or abandoned if it is backing off)."""
        self._stopping.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self.commits.close()  # a stop commits every batch decided

    async def _run(self) -> None:
        linger = self._settings.batch_linger_ms / 1000
        size = self._settings.batch_size
        loaded = False  # the previous fetch returned a full batch
        while not self._stopping.is_set():
            self.commits.check()
            fetched = await self._consumer.getmany(timeout_ms=200, max_records=size)
            count = sum(len(r) for r in fetched.values())
            was_loaded, loaded = loaded, count >= size
            if 0 < count < size and linger and was_loaded:
                # Under load only, let the rest gather into this batch: one transaction for
                # many events. Otherwise a batch starts as soon as records are there.
                await asyncio.sleep(linger)
                more = await self._consumer.getmany(timeout_ms=0, max_records=size - count)
                for tp, records in more.items():
                    count += len(records)
                    fetched.setdefault(tp, []).extend(records)
            if not fetched:
                continue
            async with self.batch_lock:
                owned = self._consumer.assignment()
                mine = {tp: records for tp, records in fetched.items() if tp in owned}
                if len(mine) < len(fetched):
                    log.info(
                        "records_of_revoked_partitions_left",
                        records=count - sum(len(r) for r in mine.values()),
                    )
                if not mine:
                    continue
                try:
                    await self._process(mine)
                except Abandoned:
                    log.warning("batch_abandoned", records=count)
            await asyncio.sleep(0)  # let a waiting revocation take the lock

    async def _process(self, fetched: dict[TopicPartition, list[Record]]) -> None:
        events: list[schemas.InputEvent] = []
        dead: list[tuple[Record, schemas.DecodeError]] = []
        traces: dict[str, str] = {}
        began = time.time_ns()
        for records in fetched.values():
            for record in records:
                value = record.value or b""
                try:
                    event = self._decoder.decode(value, record.topic, record.headers)
                except schemas.DecodeError as error:
                    # A copy without traceback and cause: their frames would hold this one,
                    # and with it the whole batch, in a reference cycle until a collection.
                    dead.append((record, schemas.DecodeError(error.kind, error.reason)))
                    continue
                events.append(event)
                trace = trace_context.of_record(record.headers, value)
                if trace is not None:
                    traces[event.id] = trace
        started = time.perf_counter()
        batch_metrics.record_age(
            [record.timestamp for records in fetched.values() for record in records], time.time()
        )
        if events:
            # A failure that is not an outage ends, after its retries, in parking (the poison
            # policy the wiring bound: service/handlers/poison.py).
            result = await self._retrying("decide", self._contain(events, traces))
            log_decisions(result.decisions, traces)
            log_parked(result.parked)
            batch_metrics.record_decided(events, result)
            if result.emitted:
                self._on_committed()
        decided = time.perf_counter()
        batch_metrics.record_decide(len(events), decided - started)
        decided_ns = time.time_ns()
        if dead:
            await self._retrying("dead_letter", functools.partial(self._dead_letter, dead))
            batch_metrics.record_dead_lettered([(r.topic, e) for r, e in dead], self._types)

        def committed() -> None:
            total = time.perf_counter() - started
            batch_metrics.record_batch(len(events) + len(dead), total)
            log.debug(
                "batch_committed",
                events=len(events),
                dead=len(dead),
                decide_ms=round((decided - started) * 1000, 2),
                total_ms=round(total * 1000, 2),
            )
            if traces and self._tracing is not NO_TRACING:
                self._tracing.consumed(
                    traces.values(), fetched=began, decided=decided_ns, committed=time.time_ns()
                )

        self.commits.hand_over(offsets.next_offsets(self._consumer, fetched), committed)

    async def _dead_letter(self, dead: list[tuple[Record, schemas.DecodeError]]) -> None:
        now = datetime.now(UTC)
        sent = []
        for record, error in dead:
            log.warning(
                "dead_lettered",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                kind=error.kind.value,
                reason=error.reason,
            )
            # The original bytes, or a placeholder pointing at them when they would not fit.
            value, key, headers = schemas.dlq_record(
                record.value,
                record.key,
                record.headers,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=error,
                failed_at=now,
                max_bytes=DLQ_MAX_MESSAGE_BYTES,
            )
            sent.append((value, key, headers))
        # Bounded: a broker that stops answering becomes a TimeoutError, retried with backoff;
        # a producer that failed for good is replaced by its owner, for every user.
        timeout = self._settings.kafka_produce_timeout_seconds
        await self._producers.send_all(self._settings.topics.dlq, sent, timeout)

    async def _retrying(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """Retry `action` until it succeeds: outages and bugs alike keep the offset and back off.

        Raises Abandoned when shutdown or a revocation comes during a backoff.
        """
        cap = self._settings.retry_backoff_max_seconds
        key = f"{self.name} {what}"
        result = await retried(
            what, action, cap=cap, sleep=self._backoff, health=self._health, health_key=key
        )
        self._health.recovered(key)
        return result

    async def _backoff(self, seconds: float) -> None:
        stop = asyncio.ensure_future(_first(self._stopping, self.revoking))
        try:
            await asyncio.wait_for(asyncio.shield(stop), timeout=seconds)
        except TimeoutError:
            return
        finally:
            stop.cancel()
        raise Abandoned


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
