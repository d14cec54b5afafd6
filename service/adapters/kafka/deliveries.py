"""The relay's batches in flight, one per output partition at most, and the partitions held back.

Each partition's batch is delivered on its own: handed to aiokafka in a task of its own (so
that a partition whose batch aiokafka cannot take yet never blocks another's `send_batch`)
and awaited on its own, with its own deadline. What the broker acknowledged is reported as soon
as it is, whatever the other partitions do. A partition whose batch is in flight takes no new
rows: its batch is never abandoned and sent again while aiokafka may still deliver it (the
idempotent producer retries a refused batch, e.g. NOT_ENOUGH_REPLICAS, until it succeeds), so
a stalled partition is sent once, in order, when its broker can take it. A batch past its
deadline is reported once (late); one that failed holds its partition back for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer


@dataclass(slots=True)
class Delivery:
    partition: int
    producer: AIOKafkaProducer
    seqs: list[int]
    traced: list[str]
    deadline: float  # monotonic
    sent_ns: int
    task: asyncio.Task[None] = field(repr=False)
    late: bool = False


@dataclass(slots=True)
class Ended:
    """What `Deliveries.reap` found: acknowledged, failed (with their error), newly late."""

    delivered: list[Delivery] = field(default_factory=list)
    failed: list[tuple[Delivery, BaseException]] = field(default_factory=list)
    late: list[Delivery] = field(default_factory=list)


class Deliveries:
    def __init__(self, *, hold: float, on_end: Callable[[], None]) -> None:
        """`hold`: how long a partition whose batch failed is held back; `on_end` is called
        when a batch is acknowledged or fails (the relay wakes to delete or hold)."""
        self._hold = hold
        self._on_end = on_end
        self._flying: dict[int, Delivery] = {}
        self._held: dict[int, float] = {}  # partition -> monotonic time until it is held back

    def blocked(self) -> set[int]:
        """Partitions that take no new rows now: a batch in flight, or held back."""
        now = time.monotonic()
        return set(self._flying) | {p for p, until in self._held.items() if until > now}

    def release_held(self) -> None:
        """Hold nothing back any more (the producer was replaced)."""
        self._held.clear()

    def send(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        batches: dict[int, tuple[Any, list[int], list[str]]],
        deadline: float,
    ) -> None:
        """Each partition's (builder, seqs, traceparents), delivered on its own by `deadline`
        (monotonic)."""
        sent_ns = time.time_ns()
        for partition, (builder, seqs, traced) in batches.items():
            task = asyncio.create_task(_deliver(producer, topic, partition, builder))
            task.add_done_callback(lambda _: self._on_end())
            self._flying[partition] = Delivery(
                partition, producer, seqs, traced, deadline, sent_ns, task
            )

    def reap(self, current: AIOKafkaProducer) -> Ended:
        """The deliveries that ended since the last call, and those newly past their deadline.
        A failed one holds its partition back, unless its producer was replaced since (it was
        abandoned, not refused); an acknowledged one releases it."""
        ended = Ended()
        now = time.monotonic()
        for partition, delivery in list(self._flying.items()):
            if not delivery.task.done():
                if now > delivery.deadline and not delivery.late:
                    delivery.late = True
                    ended.late.append(delivery)
                continue
            del self._flying[partition]
            error = _error_of(delivery.task)
            if error is None:
                self._held.pop(partition, None)
                ended.delivered.append(delivery)
            else:
                if delivery.producer is current:
                    self._held[partition] = now + self._hold
                ended.failed.append((delivery, error))
        return ended

    def acknowledged(self) -> list[Delivery]:
        """Only the deliveries the broker acknowledged since the last call (what `reap` would
        report as delivered), taken out of flight; failed and late ones are left for `reap`."""
        done = [
            d
            for d in self._flying.values()
            if d.task.done() and not d.task.cancelled() and d.task.exception() is None
        ]
        for delivery in done:
            del self._flying[delivery.partition]
            self._held.pop(delivery.partition, None)
        return done

    def producers(self) -> set[AIOKafkaProducer]:
        """The producers holding batches in flight."""
        return {d.producer for d in self._flying.values() if not d.task.done()}

    def late(self) -> list[Delivery]:
        """Batches in flight past their deadline, when every batch in flight is: abandoning
        them then abandons no batch that could still be acknowledged in time."""
        now = time.monotonic()
        flying = [d for d in self._flying.values() if not d.task.done()]
        return flying if flying and all(now > d.deadline for d in flying) else []

    def any_late(self) -> bool:
        now = time.monotonic()
        return any(now > d.deadline and not d.task.done() for d in self._flying.values())

    async def settle(self, within: float) -> None:
        """Waits up to `within` seconds for the batches in flight to end."""
        tasks = [d.task for d in self._flying.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=within)

    def next_deadline(self) -> float | None:
        """Seconds until the earliest deadline not yet reported late, if any."""
        pending = [d.deadline for d in self._flying.values() if not d.late]
        return max(0.0, min(pending) - time.monotonic()) if pending else None


async def _deliver(producer: AIOKafkaProducer, topic: str, partition: int, builder: Any) -> None:
    """Hands the batch to aiokafka and waits for the broker's acknowledgement. The batch is
    closed first: aiokafka sends a closed batch at once, while an open one waits out the
    producer's `linger_ms` (read in its accumulator, `MessageBatch.remaining_linger`) for more
    records that never come, the round having filled it already."""
    builder.close()
    acknowledged = await producer.send_batch(builder, topic, partition=partition)
    await acknowledged


def _error_of(task: asyncio.Task[None]) -> BaseException | None:
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()
