"""Where `fulfillment replay` asks each partition to resume, computed as Kafka's own
`kafka-consumer-groups.sh --reset-offsets` computes it, so that the two tools' plans agree, and
the scope syntax they share (`topic:0,2`). Pure: offsets in, offsets out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Earliest:
    pass


@dataclass(frozen=True, slots=True)
class AtTime:
    """`--to-datetime`, or `--by-duration` resolved against the clock by the caller."""

    at: datetime


@dataclass(frozen=True, slots=True)
class ToOffset:
    offset: int


@dataclass(frozen=True, slots=True)
class ShiftBy:
    count: int


Target = Earliest | AtTime | ToOffset | ShiftBy


def kafka_target(
    target: Target, *, committed: int | None, beginning: int, end: int, at_time: int | None
) -> int:
    """Kafka's new offset for one partition. `at_time`: the first offset at or after the time
    of an `AtTime` (None when there is none: Kafka falls back to the end). A shift without a
    committed offset, which Kafka refuses, counts from the beginning, as the service would
    start there."""
    match target:
        case Earliest():
            wanted = beginning
        case AtTime():
            wanted = end if at_time is None else at_time
        case ToOffset(offset=offset):
            wanted = offset
        case ShiftBy(count=count):
            wanted = (beginning if committed is None else committed) + count
    return min(max(wanted, beginning), end)


class BadScope(ValueError):
    """A `--topics` item that is not `topic` or `topic:0,2`."""


def parse_scope(items: Sequence[str]) -> dict[str, frozenset[int] | None]:
    """topic -> its chosen partitions (None: all of them), in the order given."""
    scope: dict[str, frozenset[int] | None] = {}
    for item in items:
        topic, colon, partitions = item.partition(":")
        if not topic:
            raise BadScope(f"{item!r}: no topic name")
        if not colon:
            scope[topic] = None  # the whole topic, whatever else names it
            continue
        try:
            chosen = frozenset(int(p) for p in partitions.split(","))
        except ValueError:
            raise BadScope(f"{item!r}: partitions must be numbers, as in {topic}:0,2") from None
        if any(p < 0 for p in chosen):
            raise BadScope(f"{item!r}: partitions are not negative")
        if topic not in scope:
            scope[topic] = chosen
        elif (before := scope[topic]) is not None:
            scope[topic] = before | chosen
    return scope


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 `PnDTnHnMnS`, as Kafka's `--by-duration` (java.time.Duration) reads it."""
    found = _DURATION.match(text.strip().upper())
    if not found or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"{text!r} is not a duration like PT1H30M or P1DT12H")
    parts = {k: float(v) for k, v in found.groupdict().items() if v}
    return timedelta(**parts)


def export_csv(rows: Sequence[tuple[str, int, int]]) -> str:
    """The plan as Kafka's `--export` writes it: `topic,partition,new-offset`, one a line."""
    return "".join(
        f"{_csv_text(topic)},{partition},{offset}\n" for topic, partition, offset in rows
    )


# Kafka's tool writes its CSV with Jackson, which quotes a text longer than 24 characters
# without looking at it, and a shorter one only when it holds a separator, quote or line break.
_JACKSON_QUOTE_CHECK_LENGTH = 24


def _csv_text(text: str) -> str:
    if len(text) > _JACKSON_QUOTE_CHECK_LENGTH or any(c in ',"\r\n' for c in text):
        return '"' + text.replace('"', '""') + '"'
    return text
