"""Committing consumer batches' offsets in the background, in order, each only after its batch's
decisions are committed in the database.

The consumer hands a batch's offsets over once the batch's transaction has committed (and its
dead letters are acknowledged), and goes on to fetch the next batch at once instead of waiting
a round trip to the group coordinator. One task commits what was handed over, oldest first;
offsets handed over while a commit is on the wire are merged (a partition's later offset
replaces its earlier one) and go in the next commit, so commits never overtake one another.

A commit that times out is retried, merged under anything newer, until it succeeds or its
partitions are no longer this consumer's; while a rebalance or a stop waits for it, it is given
up after that one bounded attempt instead. A commit the group refuses (it moved on without us)
is given up, as the new owner finds those events already claimed. Either way the log says so.
Anything else the commit raises is kept and raised to the consumer loop (`check`, `flush`).

A rebalance or a stop waits for `flush`: a partition is handed over only with everything
decided from it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from service.observe import batch_metrics

log = structlog.get_logger("service.consumer")

COMMIT_TIMEOUT = 15.0
RETRY_AFTER = 1.0  # seconds before a timed-out commit is tried again

Offsets = dict[TopicPartition, OffsetAndMetadata]


class Positioned(Protocol):
    """The field of aiokafka's ConsumerRecord an offset commit reads."""

    offset: int


def next_offsets(
    consumer: AIOKafkaConsumer, fetched: Mapping[TopicPartition, Sequence[Positioned]]
) -> Offsets:
    """The offset after each partition's last record, for the partitions still assigned."""
    owned = consumer.assignment()
    return {
        tp: OffsetAndMetadata(records[-1].offset + 1, "")
        for tp, records in fetched.items()
        if records and tp in owned
    }


class OffsetCommitter:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._pending: Offsets = {}
        self._done: list[Callable[[], None]] = []  # called once the pending offsets are
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failure: BaseException | None = None
        self._flushing = 0  # waiters in `settled`: a timed-out commit is then given up
        self._task: asyncio.Task[None] | None = None

    def hand_over(self, offsets: Offsets, done: Callable[[], None] = lambda: None) -> None:
        """Commit `offsets` (of a batch whose decisions are committed) after those handed over
        before; `done` is called once they are committed or given up."""
        self.check()
        self._pending.update(offsets)
        self._done.append(done)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="offset-commits")

    def check(self) -> None:
        """Raises what a commit raised that was neither a timeout nor a refusal."""
        if self._failure is not None:
            raise self._failure

    async def flush(self) -> None:
        """Returns once everything handed over is committed or given up; raises as `check`."""
        await self.settled()
        self.check()

    async def settled(self) -> None:
        """As `flush`, without raising: for a rebalance, which must go on whatever happens."""
        self._flushing += 1
        try:
            await self._idle.wait()
        finally:
            self._flushing -= 1

    async def close(self) -> None:
        """Flushes, then ends the background task."""
        try:
            await self.flush()
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                offsets, done = self._pending, self._done
                self._pending, self._done = {}, []
                owned = self._consumer.assignment()
                committed = await self._commit({tp: o for tp, o in offsets.items() if tp in owned})
                if not committed and not self._flushing:
                    # Timed out: again with whatever comes next, or on its own after a while.
                    self._pending = offsets | self._pending
                    self._done = done + self._done
                    await asyncio.sleep(RETRY_AFTER)
                    self._wake.set()
                    continue
                for callback in done:
                    callback()
                if not self._pending:
                    self._idle.set()
        except Exception as error:  # surfaced to the consumer loop, which ends on it
            self._failure = error
            self._idle.set()

    async def _commit(self, offsets: Offsets) -> bool:
        """False when it timed out (to be retried); True once committed or refused."""
        if not offsets:
            return True
        try:
            # aiokafka retries a commit for as long as the coordinator is unreachable; bounded
            # here so that a stop cannot hang on it.
            requested = time.perf_counter()
            await asyncio.wait_for(self._consumer.commit(offsets), COMMIT_TIMEOUT)
            batch_metrics.record_offset_commit(time.perf_counter() - requested)
        except TimeoutError:
            log.warning("offset_commit_timed_out", partitions=len(offsets), retry_in=RETRY_AFTER)
            return False
        except CommitFailedError as error:
            # The group moved on without us (e.g. we missed heartbeats). What we decided is
            # committed in the database; the new owner finds those events already claimed.
            log.warning("offset_commit_refused", error=str(error), partitions=len(offsets))
        return True
