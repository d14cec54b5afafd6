"""Re-made outputs against the published ones, byte for byte, paired by their cause.

Every output has one cause (an input's identity, or for a timer the event that started it), and
a cause has at most one output, so pairing by cause shows "payment P was created, now rejected"
as one difference rather than a missing and an extra event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import schemas
from service.reprocess.changelog import Published


class Explanation(StrEnum):
    """The known reasons a re-decision in arrival order differs from what was published."""

    CROSS_TOPIC_ORDER = "cross_topic_order"  # an acceptance or end before its payment, or not
    SWEEPER_TIMING = "sweeper_timing"  # the live sweeper closed a session before an event came
    UNEXPLAINED = "unexplained"  # none of those: a changed rule, or a bug


@dataclass(frozen=True, slots=True)
class Difference:
    id: str
    expected: Published | None
    got: Published | None
    explanation: Explanation


def differences(published: Iterable[Published], remade: Iterable[Published]) -> list[Difference]:
    """Each cause whose output (its key and bytes) differs, is missing, or is new; in the
    published order, then the new ones in the order they were made."""
    expected = _by_cause(published)
    got = _by_cause(remade)
    found = []
    for cause in list(expected) + [c for c in got if c not in expected]:
        old, new = expected.get(cause), got.get(cause)
        if old is not None and new is not None and (old.key, old.value) == (new.key, new.value):
            continue
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
