"""`fulfillment replay`: move the service's committed offsets on the input topics back, so it
reads those events again.

Re-reading is safe: every input event is claimed in the database (by source and id, payments
also by payment_id), so nothing is decided twice; the service only re-sends what it already
decided if the outbox still holds it. That makes a replay the way to rebuild into an empty
database, or to check that nothing new comes out.

Offsets never move forward (that would skip events the service has not decided), and a
partition with no committed offset starts from its beginning, as the service itself would.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from service.adapters.kafka.admin import (
    committed_offsets,
    live_members,
    missing_topics,
    topic_partitions,
)
from service.bootstrap.factory import Clients
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Move:
    topic: str
    partition: int
    committed: int | None
    new: int
    end: int

    @property
    def reprocess(self) -> int:
        """Messages the service will read again (all of them, where nothing is committed)."""
        read_up_to = self.end if self.committed is None else self.committed
        return max(0, read_up_to - self.new)


def plan(
    tp: TopicPartition, *, committed: int | None, beginning: int, end: int, target: int
) -> Move:
    """Where the group resumes on `tp`, asked to resume at `target`."""
    if committed is None:
        # Nothing says the events before `target` were ever decided.
        new = beginning
    else:
        # Not past the committed offset (the events after it are not decided yet), and not
        # before the beginning (retention deleted those; the broker would reset anyway).
        new = max(beginning, min(target, committed))
    return Move(tp.topic, tp.partition, committed, new, end)


async def replay(
    settings: Settings,
    *,
    to_earliest: bool,
    to_datetime: datetime | None,
    topics: list[str] | None,
    dry_run: bool,
) -> int:
    inputs = list(settings.topics.input_types())
    chosen = list(dict.fromkeys(topics)) if topics else inputs
    unknown = [t for t in chosen if t not in inputs]
    if unknown:
        _error(f"not input topics: {', '.join(unknown)} (the input topics: {', '.join(inputs)})")
        return 2
    if to_earliest == (to_datetime is not None):
        _error("give exactly one of --to-earliest and --to-datetime")
        return 2
    try:
        return await _replay(settings, chosen, to_datetime, dry_run)
    except KafkaConnectionError as error:
        _error(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {error}")
        return 1


async def _replay(
    settings: Settings, topics: list[str], to_datetime: datetime | None, dry_run: bool
) -> int:
    group = settings.group_id
    clients = Clients(settings)
    async with clients.started_admin() as admin:
        missing = await missing_topics(admin, topics)
        if missing:
            _error(f"no such topic: {', '.join(missing)}")
            return 1
        members = await live_members(admin, group)
        if members and not dry_run:
            _refuse(group, members)
            return 1
        tps = await topic_partitions(admin, topics)
        committed = await committed_offsets(admin, group, tps)
    # A consumer that never subscribes never joins the group: it only reads offsets and commits.
    consumer = clients.consumer()
    await consumer.start()
    try:
        moves = await _plan_all(consumer, tps, committed, to_datetime)
        if not dry_run:
            consumer.assign(tps)
            try:
                await consumer.commit({TopicPartition(m.topic, m.partition): m.new for m in moves})
            except CommitFailedError:
                # The broker refuses a commit from outside a group with live members.
                _refuse(group, ["(a member joined while replay was running)"])
                return 1
    finally:
        await consumer.stop()
    target = "the earliest offsets" if to_datetime is None else to_datetime.isoformat()
    done = "dry run, nothing changed" if dry_run else "committed"
    print(f"replay of consumer group {group!r} to {target} ({done})")
    print_moves(moves)
    if members:
        print(f"note: the group has live members, replay would refuse: {', '.join(members)}")
    return 0


async def _plan_all(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    committed: Mapping[TopicPartition, object],
    to_datetime: datetime | None,
) -> list[Move]:
    beginning = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    if to_datetime is None:
        targets = dict(beginning)
    else:
        # By the records' Kafka timestamps (when they were produced), not the events' `time`.
        millis = int(to_datetime.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: millis for tp in tps})
        targets = {tp: end[tp] if found[tp] is None else found[tp].offset for tp in tps}
    moves = []
    for tp in tps:
        offset = getattr(committed.get(tp), "offset", -1)
        moves.append(
            plan(
                tp,
                committed=None if offset < 0 else offset,
                beginning=beginning[tp],
                end=end[tp],
                target=targets[tp],
            )
        )
    return moves


def print_moves(moves: Sequence[Move]) -> None:
    width = max([len("topic"), *(len(m.topic) for m in moves)])
    print(f"{'topic':<{width}}  partition  committed        new  reprocess")
    for m in moves:
        committed = "-" if m.committed is None else str(m.committed)
        print(f"{m.topic:<{width}}  {m.partition:>9}  {committed:>9}  {m.new:>9}  {m.reprocess:>9}")
    print(f"{'total':<{width}}  {'':>9}  {'':>9}  {'':>9}  {sum(m.reprocess for m in moves):>9}")


def _refuse(group: str, members: Sequence[str]) -> None:
    _error(
        f"consumer group {group!r} has live members, stop the service first: {', '.join(members)}"
    )


def _error(message: str) -> None:
    print(f"fulfillment replay: {message}", file=sys.stderr)
