"""A rebuild's steps grouped into few transactions: decisions in batches, closings together.

A closing only has to stay between its customer's decisions: steps about different customers
commute. So closings wait, and are applied together (one sweep) just before a decision about
one of their customers, or at the end. A batch decides its events in order, exactly as one
event at a time would; a sweep at the latest of its deadlines closes each customer's one active
session, the one the closing names. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import schemas
from service.core.owners import customer_of
from service.reprocess.replay_order import Close, Plan

BATCH = 500


@dataclass(frozen=True, slots=True)
class DecideRun:
    events: tuple[schemas.InputEvent, ...]


@dataclass(frozen=True, slots=True)
class CloseRun:
    customers: tuple[UUID, ...]
    now: datetime


Run = DecideRun | CloseRun


def runs(plan: Plan, *, size: int = BATCH) -> list[Run]:
    found: list[Run] = []
    batch: list[schemas.InputEvent] = []
    waiting: dict[UUID, Close] = {}

    def decide() -> None:
        if batch:
            found.append(DecideRun(tuple(batch)))
            batch.clear()

    def close() -> None:
        if waiting:
            found.append(CloseRun(tuple(waiting), max(c.at for c in waiting.values())))
            waiting.clear()

    for step in plan.steps:
        if isinstance(step, Close):
            if step.customer_id in waiting:  # two closings with no decision between
                decide()
                close()
            waiting[step.customer_id] = step
            continue
        if customer_of(step.record.event, plan.owners.get) in waiting:
            decide()
            close()
        batch.append(step.record.event)
        if len(batch) >= size:
            decide()
    decide()
    close()
    return found


def events_in(found: Sequence[Run]) -> int:
    return sum(len(r.events) for r in found if isinstance(r, DecideRun))
