"""The outbox relay: publishes committed outbox rows to `sessions.events` in commit order.

One relay publishes at a time across all instances (a session-level advisory lock held on the
relay's own connection), reading rows in `seq` order: a customer's later transaction can only
start after the earlier one committed (the customer lock), so its rows always carry larger seqs,
and one in-flight batch per partition in the idempotent producer keeps that order on the wire.
If the leader's connection drops, its lock goes with it and another instance takes over; rows
it had sent but not yet deleted are sent again, with the same ids (at-least-once). For the same
reason its deletes commit without waiting for the WAL flush: a server crash can only bring back
rows that were already sent, so a slow fsync never holds up the next round.

Each partition stands alone (deliveries.py): its batch has its own deadline, what the broker
acknowledged is deleted at once (before each send), and a partition in flight or refused waits
with its later rows while the others go on. Acknowledged rows whose delete failed (a dropped
connection, a read-only server) are deleted before this relay sends anything more. A round
reads its pages (up to `MAX_PAGES`) in one snapshot. Before each send the leader checks, on its
own connection, that it still holds the lock (a fence): in the statement that reads a round's
only page, or after the pages of a fuller outbox. A lock can be freed at once (a restart, a
failover, `pg_terminate_backend`) while a batch of the old leader is still in flight, so no
batch may land after its deadline (the produce timeout from the fence): one past it is
abandoned, with its producer, and a relay whose connection fails abandons what it has in
flight. The leader record (`relay_leader`) says whether the last leader let go cleanly; after
an unclean end another leader waits out that bound before its first send.
A process frozen between its fence and handing a batch over is not covered.

A commit in this process wakes the relay directly (`committed`, called by the store); other
instances' commits arrive as notifications, and a poll catches what both miss. Each carries the
commit's time, from which `fulfillment_relay_wake_seconds` counts to the leader's next send.

Raises nothing out of `run`: broker and database faults are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaProducer

from service.adapters.kafka.deliveries import Deliveries, Delivery
from service.adapters.kafka.outbox_batches import RoundBatches, partition_for, read_pages
from service.adapters.kafka.producer_owner import PRODUCER_BROKEN, ProducerOwner
from service.adapters.kafka.wake_times import WakeTimes
from service.adapters.postgres import outbox, sql
from service.adapters.postgres.pool import Connection, Pool, connection
from service.adapters.retry import retrying
from service.config.settings import Settings
from service.observe import metrics
from service.observe.health import Health
from service.observe.tracing import NO_TRACING, Tracing

__all__ = ["LostLeadership", "Relay", "partition_for"]

log = structlog.get_logger("service.relay")

LATE_CHECK = 0.5  # how often batches past their deadline are looked for
# Beyond the produce timeout, what a new leader waits after another's unclean end: finding a
# late batch (LATE_CHECK), replacing the producer, and a request already in the broker's queue.
TAKEOVER_MARGIN = 2.0


class LostLeadership(ConnectionError):
    """The relay's connection no longer holds the leader's lock: an outage, retried."""


class Relay:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        producer: AIOKafkaProducer | ProducerOwner,
        *,
        health: Health | None = None,
        tracing: Tracing = NO_TRACING,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        """`producer`, or the owner of the producer the instance shares; `new_producer` (with a
        bare producer) builds a replacement for one that failed for good, which the relay then
        owns and stops; without either such a failure is only retried."""
        self._settings = settings
        self._tracing = tracing
        self._health = health or Health()
        self._pool = pool
        # A bare producer gets an owner of its own, which stops the replacements it makes.
        self._own_owner = not isinstance(producer, ProducerOwner)
        self._producers = (
            producer
            if isinstance(producer, ProducerOwner)
            else ProducerOwner(producer, new_producer)
        )
        self._generation = self._producers.generation
        self._id = uuid.uuid4()  # this relay in the leader record
        self._wake = asyncio.Event()
        self._leads = False
        self._wakes = WakeTimes()
        self._backlog = False  # the last round's first page was full
        hold = min(settings.retry_backoff_max_seconds, 5.0)
        self._deliveries = Deliveries(hold=hold, on_end=self._wake.set)
        self._undeleted: list[int] = []  # seqs the broker acknowledged, their delete not committed
        self._stopping = asyncio.Event()
        self.published = 0
        self._binary = settings.output_content_mode == "binary"  # rows re-encoded when sent

    def wake(self) -> None:
        """Something was committed to the outbox: look now rather than at the next poll."""
        self._wake.set()

    @property
    def leads(self) -> bool:
        """Whether this relay holds the leader's lock (as far as it knows)."""
        return self._leads

    def committed(self, at: float) -> None:
        """Outbox rows committed at `at` (Unix seconds): look now."""
        self._wakes.committed(at)
        self._wake.set()

    def stop(self) -> None:
        """Finish: publish what is already in the outbox, then return from `run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        cap = self._settings.retry_backoff_max_seconds
        # Keep trying through outages; once stopping, give up after a few attempts.
        give_up = lambda state: self._stopping.is_set() and state.attempt_number > 3  # noqa: E731
        watch = asyncio.create_task(self._abandon_late())
        try:
            async for attempt in retrying("relay", cap=cap, stop=give_up, health=self._health):
                with attempt:
                    await self._lead()
        except Exception as error:
            log.error("relay_stopped_with_unpublished_rows", error=repr(error))
        finally:
            watch.cancel()
            if self._own_owner:
                await self._producers.stop()

    async def _abandon_late(self) -> None:
        """Apart from the database loop, which a dead connection can hold up for a minute: a
        batch past its deadline is abandoned (its producer replaced) once every batch in flight
        is, and meanwhile no new batch is sent. So no batch lands later than its deadline, the
        bound a new leader waits out after an unclean change (`_take_over`)."""
        while True:
            await asyncio.sleep(LATE_CHECK)
            for delivery in self._deliveries.late():
                reason = TimeoutError(
                    f"a batch of partition {delivery.partition} past its deadline"
                )
                await self._producers.abandon(delivery.producer, reason)

    async def _take_over(self, conn: Connection) -> bool:
        """Records this relay as the leader; after another leader's unclean end, waits out its
        longest possible delivery first. False when told to stop meanwhile."""
        former, clean = await outbox.take_over(conn, self._id)
        if clean or (former == self._id and not self._deliveries.producers()):
            return True
        wait = self._settings.kafka_produce_timeout_seconds + TAKEOVER_MARGIN
        log.warning("relay_waiting_out_former_leader", seconds=wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), wait)
        return not self._stopping.is_set()

    async def _lead(self) -> None:
        async with connection(self._pool) as conn:
            await outbox.prepare_relay_connection(conn)
            self._health.recovered("relay")
            await conn.add_listener(sql.OUTBOX_CHANNEL, self._notified)
            leader = False
            try:
                while True:
                    if not leader and await outbox.try_lock(conn, sql.RELAY_LOCK_KEY):
                        leader = True
                        log.info("relay_leading")
                        if not await self._take_over(conn):
                            break
                        self._leads = True
                    self._wake.clear()
                    if not leader:
                        self._wakes.clear()
                    sent = await self._publish(conn) if leader else 0
                    if sent == self._settings.relay_batch_size:
                        continue  # more is waiting
                    # Stopping: once no batch in flight can still end within its deadline.
                    if self._stopping.is_set() and self._deliveries.next_deadline() is None:
                        break
                    await self._idle()
                if leader and not self._deliveries.producers():
                    await outbox.let_go(conn, self._id)
            except Exception as error:
                self._leads = False
                # The lock goes with this connection: nothing sent may land after what the
                # next leader sends.
                for producer in self._deliveries.producers():
                    await self._producers.abandon(producer, error)
                raise
            finally:
                self._leads = False
                # On a dead connection these fail too; the error worth reporting is the first.
                with contextlib.suppress(Exception):
                    await conn.remove_listener(sql.OUTBOX_CHANNEL, self._notified)
                    if leader:
                        await outbox.unlock(conn, sql.RELAY_LOCK_KEY)

    async def _idle(self) -> None:
        """Until a notification, a batch's end, a batch's deadline or the next poll."""
        wait = self._settings.relay_poll_interval_seconds
        if (deadline := self._deliveries.next_deadline()) is not None:
            wait = min(wait, deadline + 0.01)
        if self._stopping.is_set():  # what is in flight ends within its deadline
            await self._deliveries.settle(wait)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        """Another instance committed outbox rows; its payload is the commit's time (none from
        an older version)."""
        try:
            self.committed(float(str(payload)))
        except ValueError:
            self._wake.set()

    async def _publish(self, conn: Connection) -> int:
        """One round: what ended is deleted or held back, then what the free partitions can
        take is sent. A batch past its deadline, or a failure, is reported to the producer's
        owner, which replaces a producer that failed for good (producer_owner.py)."""
        producer = self._producers.producer
        if self._generation != self._producers.generation:  # replaced: hold nothing back
            self._generation = self._producers.generation
            self._deliveries.release_held()
        await self._settle(conn)
        try:
            return await self._send_round(conn, producer)
        except (TimeoutError, *PRODUCER_BROKEN) as error:
            await self._producers.failed(producer, error)
            raise

    async def _settle(self, conn: Connection) -> None:
        """Deletes what the broker acknowledged; holds back what failed; reports lateness."""
        ended = self._deliveries.reap(self._producers.producer)
        await self._delete(conn, ended.delivered)
        for delivery in ended.late:
            log.warning("relay_partition_late", partition=delivery.partition)
            await self._producers.failed(delivery.producer, TimeoutError())
        for delivery, error in ended.failed:
            log.warning("relay_partition_failed", partition=delivery.partition, error=repr(error))
            await self._producers.failed(delivery.producer, error)

    async def _delete(self, conn: Connection, done: list[Delivery]) -> None:
        """Counts what the broker acknowledged and deletes its rows, with those of a delete that
        failed before (kept until one commits: this relay never sends them again)."""
        if done:
            published = sum(len(d.seqs) for d in done)
            self._undeleted += [seq for d in done for seq in d.seqs]
            self.published += published
            metrics.published.inc(published)
            self._producers.delivered()
            if self._tracing is not NO_TRACING:
                for d in done:
                    self._tracing.published(d.traced, sent=d.sent_ns, acknowledged=time.time_ns())
        if self._undeleted:
            await outbox.delete_outbox(conn, self._undeleted)
            self._undeleted = []

    async def _send_round(self, conn: Connection, producer: AIOKafkaProducer) -> int:
        """Returns the batch size when more rows wait (go on at once), else what was sent."""
        limit = self._settings.relay_batch_size
        topic = self._settings.topics.sessions_events
        timeout = self._settings.kafka_produce_timeout_seconds
        count = len(await asyncio.wait_for(producer.partitions_for(topic), timeout))
        # A partition in flight or held back, or whose batch is full, has all its later rows
        # wait too: a customer's later events never overtake earlier ones.
        blocked = self._deliveries.blocked()
        late = self._deliveries.any_late() and self._producers.replaceable
        if late or self._producers.replacing:
            return 0  # until the late batches are abandoned and the producer replaced
        commits = self._wakes.take()
        batches = RoundBatches(producer, count, blocked, binary=self._binary)
        fenced = time.monotonic()  # each batch's deadline counts from the fence
        fence: tuple[bool, bool] | None = None
        if not self._backlog:
            # Usually one page holds the whole outbox: read with the fence, one round trip.
            rows, fence = await outbox.first_page_fenced(conn, limit, sql.RELAY_LOCK_KEY)
            self._backlog = len(rows) == limit
            if not self._backlog:
                batches.add(rows)
        if self._backlog:
            # A fuller outbox: read again, in pages of one snapshot, then fenced on its own.
            self._backlog = await read_pages(conn, batches, limit)
            fenced, fence = time.monotonic(), None
        # Acknowledged while this round read: deleted before the send, not a round later.
        await self._delete(conn, self._deliveries.acknowledged())
        if not batches.taken and batches.seen:
            self._wakes.waiting(commits)
            return 0  # what is blocked waits for a batch's end, a hold's end or a poll
        if not batches.taken:
            self._wakes.sent_before(commits)
        # Fenced when the outbox is empty too: a relay left on a demoted primary would read its
        # empty outbox for good, sending and deleting nothing, meeting no error.
        if not await outbox.leads(conn, sql.RELAY_LOCK_KEY, fence):
            raise LostLeadership("the relay's connection no longer holds the leader's lock")
        if not batches.taken:
            return 0
        filled = {p: batch for p, batch in batches.by_partition.items() if batch[1]}
        self._deliveries.send(producer, topic, filled, fenced + timeout)
        self._wakes.sent(commits)
        return limit if batches.more else batches.taken
