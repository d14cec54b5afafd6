"""The mixed drain: the simulate generator's stream (payments, repeat payments, acceptances in
time and late, two mechanics racing, ends, redeliveries, malformed messages) preloaded on the
three input topics, then the service started and timed until its group has committed every
input offset: every message decided, dead-lettered or found a duplicate.

While it runs the bench asks the broker only for the group's committed offsets and the output
topic's end offsets; the outcomes are read once, afterwards, for their timestamps.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.drain import Aborted
from bench.kafka_io import OutcomeReader
from bench.procstats import RssWatch, cores_by_process, cpu_between, cpu_snapshot
from bench.service_api import Message, Simulation
from bench.service_proc import ServiceProcess
from service.config.settings import Settings

# The stream's event times span twice the request TTL (15 min by default), so expiries and
# late acceptances are part of the mix, whatever N is.
SPAN_SECONDS = 1800.0


def mixed_messages(
    n: int, customers: int, start: datetime, seed: int, settings: Settings
) -> list[Message]:
    sim = Simulation(
        customers,
        seed,
        topics=settings.topics,
        request_ttl=settings.request_ttl,
        max_live=settings.max_live,
        salt=start.isoformat(),
    )
    return list(islice(sim.messages(start, rate=n / SPAN_SECONDS), n))


@dataclass(frozen=True, slots=True)
class MixedDrain:
    n: int
    kinds: dict[str, int]  # what the generator sent, by its own kind
    started_at: float  # epoch seconds, the service's exec
    first_outcome: float  # epoch seconds, the first output record's timestamp
    drained_at: float  # epoch seconds, when every input offset was seen committed
    outcome_stamps: list[float]  # every output record's timestamp, epoch seconds
    types: dict[str, int]  # output records by event type
    cpu: dict[str, float]  # cores by group, first outcome to drained
    cores_by_process: dict[str, float]
    peak_rss: int

    @property
    def rate(self) -> float:
        return self.n / (self.drained_at - self.started_at)

    @property
    def steady_rate(self) -> float:
        span = self.drained_at - self.first_outcome
        return self.n / span if span > 0 else math.inf


async def mixed_drain(
    service: ServiceProcess,
    settings: Settings,
    reader: OutcomeReader,
    messages: list[Message],
    *,
    stall: float,
) -> MixedDrain:
    """`messages` must already be on the input topics. Raises Aborted on a stall of `stall`
    seconds (no new committed offset) or if the service exits."""
    kafka = settings.kafka_bootstrap_servers
    ends = await _input_ends(kafka, settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        before = cpu_snapshot(time.monotonic())
        await service.start()
        watch = RssWatch(service.pid)
        watch.start()
        steady = None
        done, changed = 0, time.monotonic()
        while True:
            if service.exit_code is not None:
                raise Aborted(f"the service exited with code {service.exit_code} (mixed drain)")
            committed = await admin.list_consumer_group_offsets(settings.group_id)
            now = time.monotonic()
            steady = steady or (cpu_snapshot(now) if await reader.total() else None)
            reached = sum(
                min(end, committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
            if reached >= sum(ends.values()):
                break
            if reached != done:
                done, changed = reached, now
            elif now - changed > stall:
                raise Aborted(
                    f"mixed drain stalled: {reached:,} of {sum(ends.values()):,} input offsets "
                    f"committed, none new for {stall:.0f} s"
                )
            await asyncio.sleep(0.2)
        drained_at = time.time()
        after = cpu_snapshot(time.monotonic())
        await watch.stop()
    finally:
        await admin.close()
    start = steady if steady and steady.at < after.at else before
    try:
        outcomes = await reader.read_to(await reader.end_offsets(), within=stall)
    except TimeoutError:
        raise Aborted(f"reading the mixed drain's outcomes took over {stall:.0f} s") from None
    stamps = sorted(o.timestamp for o in outcomes)
    return MixedDrain(
        n=len(messages),
        kinds=dict(Counter(str(m.kind) for m in messages)),
        started_at=service.started_at,
        first_outcome=stamps[0] if stamps else drained_at,
        drained_at=drained_at,
        outcome_stamps=stamps,
        types=dict(Counter(o.type for o in outcomes)),
        cpu=cpu_between(start, after),
        cores_by_process=cores_by_process(start, after),
        peak_rss=watch.peak,
    )


async def _input_ends(kafka: str, settings: Settings) -> dict[TopicPartition, int]:
    topics = [
        settings.topics.payments_completed,
        settings.topics.mechanics_accepted,
        settings.topics.sessions_ended,
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in range(settings.topic_partitions)
        ]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp: end for tp, end in ends.items() if end > 0}
