"""A replay: the consumer group's committed offsets on the input topics moved back, so the
service reads those events again.

Re-reading is safe: every input event is claimed in the database (by source and id, payments
also by payment_id), so nothing is decided twice; the service only re-sends what it already
decided if the outbox still holds it.

The targets are those of Kafka's `kafka-consumer-groups.sh --reset-offsets` (`replay_targets`),
and so are its plans, with one rule on top: offsets never move forward (that would skip events
the service has not decided), and a partition with no committed offset starts from its
beginning, as the service itself would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from service.adapters.kafka.admin import (
    committed_offsets,
    live_members,
    missing_topics,
    topic_partitions,
)
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from service.reprocess.replay_targets import AtTime, Target, kafka_target


@dataclass(frozen=True, slots=True)
class Move:
    topic: str
    partition: int
    committed: int | None
    new: int
    end: int
    kafka: int = -1  # what Kafka's own reset tool would set; `new` differs where it is held

    @property
    def reprocess(self) -> int:
        """Messages the service will read again (all of them, where nothing is committed)."""
        read_up_to = self.end if self.committed is None else self.committed
        return max(0, read_up_to - self.new)


@dataclass(frozen=True, slots=True)
class Moved:
    moves: list[Move]
    members: list[str]  # the group's live members (a plan only: with them, nothing moves)


class Refused(Exception):
    """The replay cannot go ahead; the message says why, in one line."""


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


async def move_offsets(
    settings: Settings,
    scope: Mapping[str, frozenset[int] | None],
    target: Target,
    *,
    apply: bool,
) -> Moved:
    """The plan for every partition in `scope`, committed when `apply`. Raises Refused (a
    missing topic or partition, live members in the group) and aiokafka's errors."""
    group = settings.group_id
    clients = Clients(settings)
    async with clients.started_admin() as admin:
        missing = await missing_topics(admin, list(scope))
        if missing:
            raise Refused(f"no such topic: {', '.join(missing)}")
        members = await live_members(admin, group)
        if members and apply:
            raise Refused(_refusal(group, members))
        every = await topic_partitions(admin, list(scope))
        tps = [tp for tp in every if tp.partition in (scope[tp.topic] or {tp.partition})]
        absent = sorted(
            f"{topic}:{p}"
            for topic, chosen in scope.items()
            for p in chosen or ()
            if TopicPartition(topic, p) not in every
        )
        if absent:
            raise Refused(f"no such partition: {', '.join(absent)}")
        committed = await committed_offsets(admin, group, tps)
    # A consumer that never subscribes never joins the group: it only reads offsets and commits.
    consumer = clients.consumer()
    await consumer.start()
    try:
        moves = await _plan_all(consumer, tps, committed, target)
        if apply:
            consumer.assign(tps)
            try:
                await consumer.commit({TopicPartition(m.topic, m.partition): m.new for m in moves})
            except CommitFailedError:
                # The broker refuses a commit from outside a group with live members.
                raise Refused(
                    _refusal(group, ["(a member joined while replay was running)"])
                ) from None
    finally:
        await consumer.stop()
    return Moved(moves, list(members))


async def _plan_all(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    committed: Mapping[TopicPartition, object],
    target: Target,
) -> list[Move]:
    beginning = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    at_time: dict[TopicPartition, int | None] = dict.fromkeys(tps)
    if isinstance(target, AtTime):
        # By the records' Kafka timestamps (when they were produced), not the events' `time`.
        millis = max(0, int(target.at.timestamp() * 1000))  # before 1970: from the start
        found = await consumer.offsets_for_times({tp: millis for tp in tps})
        at_time = {tp: None if found[tp] is None else found[tp].offset for tp in tps}
    moves = []
    for tp in tps:
        offset = getattr(committed.get(tp), "offset", -1)
        known = None if offset is None or offset < 0 else offset
        kafka = kafka_target(
            target, committed=known, beginning=beginning[tp], end=end[tp], at_time=at_time[tp]
        )
        move = plan(tp, committed=known, beginning=beginning[tp], end=end[tp], target=kafka)
        moves.append(replace(move, kafka=kafka))
    return moves


def _refusal(group: str, members: Sequence[str]) -> str:
    return (
        f"consumer group {group!r} has live members, stop the service first: {', '.join(members)}"
    )
