"""`fulfillment replay`: move the service's committed offsets on the input topics back, so it
reads those events again.

Re-reading is safe: every input event is claimed in the database (by source and id, payments
also by payment_id), so nothing is decided twice; the service only re-sends what it already
decided if the outbox still holds it. (Into an empty database, use `fulfillment rebuild`,
which follows the changelog's order.)

The targets and the scope (`topic:0,2`) are those of Kafka's `kafka-consumer-groups.sh
--reset-offsets` (`replay_targets`), and so are its plans, with one rule on top: offsets never
move forward (that would skip events the service has not decided), and a partition with no
committed offset starts from its beginning, as the service itself would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from service.adapters.kafka.admin import (
    committed_offsets,
    live_members,
    missing_topics,
    topic_partitions,
)
from service.bootstrap.factory import Clients
from service.entrypoints import output
from service.entrypoints.replay_targets import (
    AtTime,
    BadScope,
    Earliest,
    ShiftBy,
    Target,
    ToOffset,
    export_csv,
    kafka_target,
    parse_scope,
)
from service.settings import Settings


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
    to_earliest: bool = False,
    to_datetime: datetime | None = None,
    topics: list[str] | None = None,
    dry_run: bool = False,
    to_offset: int | None = None,
    shift_by: int | None = None,
    by_duration: timedelta | None = None,
    execute: bool = False,
    export: bool = False,
) -> int:
    """The earlier forms (`--to-earliest`, `--to-datetime`) apply unless `dry_run`, as they
    always did; the others, like Kafka's tool, only plan unless `execute`."""
    inputs = list(settings.topics.input_types())
    try:
        scope = parse_scope(topics or inputs)
    except BadScope as error:
        _error(f"--topics: {error}")
        return 2
    unknown = [t for t in scope if t not in inputs]
    if unknown:
        _error(f"not input topics: {', '.join(unknown)} (the input topics: {', '.join(inputs)})")
        return 2
    targets: list[Target] = []
    if to_earliest:
        targets.append(Earliest())
    if to_datetime is not None:
        targets.append(AtTime(to_datetime))
    if by_duration is not None:
        targets.append(AtTime(datetime.now(UTC) - by_duration))
    if to_offset is not None:
        targets.append(ToOffset(to_offset))
    if shift_by is not None:
        targets.append(ShiftBy(shift_by))
    if len(targets) != 1:
        _error(
            "give exactly one of --to-earliest, --to-datetime, --by-duration, --to-offset, "
            "--shift-by"
        )
        return 2
    if dry_run and execute:
        _error("give at most one of --dry-run and --execute")
        return 2
    earlier_form = to_earliest or to_datetime is not None
    apply = execute or (earlier_form and not dry_run)
    try:
        return await _replay(settings, scope, targets[0], apply, export)
    except KafkaConnectionError as error:
        _error(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {error}")
        return 1


async def _replay(
    settings: Settings,
    scope: dict[str, frozenset[int] | None],
    target: Target,
    apply: bool,
    export: bool,
) -> int:
    dry_run = not apply
    group = settings.group_id
    clients = Clients(settings)
    async with clients.started_admin() as admin:
        missing = await missing_topics(admin, list(scope))
        if missing:
            _error(f"no such topic: {', '.join(missing)}")
            return 1
        members = await live_members(admin, group)
        if members and not dry_run:
            _refuse(group, members)
            return 1
        every = await topic_partitions(admin, list(scope))
        tps = [tp for tp in every if tp.partition in (scope[tp.topic] or {tp.partition})]
        absent = sorted(
            f"{topic}:{p}"
            for topic, chosen in scope.items()
            for p in chosen or ()
            if TopicPartition(topic, p) not in every
        )
        if absent:
            _error(f"no such partition: {', '.join(absent)}")
            return 1
        committed = await committed_offsets(admin, group, tps)
    # A consumer that never subscribes never joins the group: it only reads offsets and commits.
    consumer = clients.consumer()
    await consumer.start()
    try:
        moves = await _plan_all(consumer, tps, committed, target)
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
    if export:
        print(export_csv([(m.topic, m.partition, m.new) for m in moves]), end="")
        return 0
    done = "dry run, nothing changed" if dry_run else "committed"
    print(f"replay of consumer group {group!r} to {_describe(target)} ({done})")
    print_moves(moves)
    held = [m for m in moves if m.kafka != m.new]
    if held:
        print(
            "note: never past the committed offset, nor after the beginning where nothing is "
            "committed (those events are not decided yet): "
            + ", ".join(f"{m.topic}:{m.partition} {m.kafka} -> {m.new}" for m in held)
        )
    if members:
        print(f"note: the group has live members, replay would refuse: {', '.join(members)}")
    return 0


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


def _describe(target: Target) -> str:
    match target:
        case Earliest():
            return "the earliest offsets"
        case AtTime(at=at):
            return at.isoformat()
        case ToOffset(offset=offset):
            return f"offset {offset}"
        case ShiftBy(count=count):
            return f"the committed offsets shifted by {count:+d}"


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
    output.error(message, command="replay")
