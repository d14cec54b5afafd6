"""`fulfillment replay`: move the service's committed offsets on the input topics back, so it
reads those events again (`service.reprocess.replay`; this module checks the options and prints
the plan).

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

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka.errors import KafkaConnectionError

from service.config.settings import Settings
from service.reprocess.replay import Move, Refused, move_offsets
from service.reprocess.replay_targets import (
    AtTime,
    BadScope,
    Earliest,
    ShiftBy,
    Target,
    ToOffset,
    export_csv,
    parse_scope,
)


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
    try:
        moved = await move_offsets(settings, scope, target, apply=apply)
    except Refused as error:
        _error(str(error))
        return 1
    moves, members = moved.moves, moved.members
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


def _error(message: str) -> None:
    print(f"fulfillment replay: {message}", file=sys.stderr)
