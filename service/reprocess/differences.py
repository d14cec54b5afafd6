"""Re-made outputs against the published ones, byte for byte, paired by their cause.

Every output has one cause (an input's identity, or for a timer the event that started it), and
a cause has at most one output, so pairing by cause shows "payment P was created, now rejected"
as one difference rather than a missing and an extra event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import schemas
from service.reprocess.changelog import Published, published


class Explanation(StrEnum):
    """The known reasons a re-decision in arrival order differs from what was published."""

    CROSS_TOPIC_ORDER = "cross_topic_order"  # an acceptance or end before its payment, or not
    SWEEPER_TIMING = "sweeper_timing"  # the live sweeper closed a session before an event came
    UNEXPLAINED = "unexplained"  # none of those: a changed rule, or a bug


class Remade(NamedTuple):
    """A re-made output as the handlers encoded it, with the cause they decided it for: read
    back (`read`) only where it differs, as most of a history's outputs do not."""

    causation: tuple[str, str]
    key: bytes
    value: bytes

    def read(self) -> Published:
        return published(self.key, self.value, timestamp=0, partition=-1, offset=-1)


@dataclass(frozen=True, slots=True)
class Difference:
    id: str
    expected: Published | None
    got: Published | None
    explanation: Explanation


def differences(changelog: Iterable[Published], remade: Iterable[Remade]) -> list[Difference]:
    """Each cause whose output (its key and bytes) differs, is missing, or is new; in the
    published order, then the new ones by key, each key's in the order they were made (the
    same order however many processes made them: one key's outputs are made by one)."""
    expected = _by_cause(changelog)
    got: dict[tuple[str, str], Remade] = {}
    for made in remade:
        got.setdefault(made.causation, made)
    found = []
    unpublished = sorted((c for c in got if c not in expected), key=lambda c: got[c].key)
    for cause in [*expected, *unpublished]:
        old, made_now = expected.get(cause), got.get(cause)
        if (
            old is not None
            and made_now is not None
            and old.value == made_now.value
            and old.key == made_now.key.decode(errors="replace")
        ):
            continue
        new = None if made_now is None else made_now.read()
        shown = old or new
        assert shown is not None
        found.append(Difference(shown.id, old, new, explain(old, new)))
    return found


def explain(expected: Published | None, got: Published | None) -> Explanation:
    sides = [p for p in (expected, got) if p is not None]
    if any(p.unknown_session for p in sides):
        return Explanation.CROSS_TOPIC_ORDER
    if any(p.timer for p in sides):
        return Explanation.SWEEPER_TIMING
    kinds = {_kind(p) for p in sides}
    if len(sides) == 1 and kinds <= {schemas.SESSION_COMPLETED}:
        return Explanation.SWEEPER_TIMING  # an end that found its session live, or not
    if kinds in _TIMING_FLIPS:
        return Explanation.SWEEPER_TIMING
    return Explanation.UNEXPLAINED


def _kind(p: Published) -> str:
    return p.type


_TIMING_FLIPS = (
    {schemas.SESSION_CREATED, schemas.SESSION_REJECTED},
    {schemas.SESSION_ACCEPTED, schemas.SESSION_ACCEPTANCE_REJECTED},
)


def _by_cause(outputs: Iterable[Published]) -> dict[tuple[str, str], Published]:
    found: dict[tuple[str, str], Published] = {}
    for out in outputs:
        found.setdefault(out.causation, out)  # a copy published again is the same event
    return found
