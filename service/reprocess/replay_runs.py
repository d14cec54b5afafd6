"""A rebuild's steps grouped into few transactions: decisions in batches, closings together.

Steps about different customers commute: a decision reads and writes only its customer's rows
(and its own dedupe record, and for a payment its payment id's outcome), and a closing only its
customer's one active session. So each step only has to stay after the earlier steps that touch
what it touches. The steps are laid out in layers, decisions and closings alternating, each step
in the first layer of its kind after the last one holding a step it depends on; a layer's
decisions run in plan order in batches of `size` events, a closing layer is one sweep at the
latest of its deadlines, which closes each customer's one active session, the one the closing
names (the sweep's output depends on the session alone, not on its `now`). So the number of
transactions follows the busiest customer's alternation of decisions and closings, not the
number of closings in the whole history. Applied in order, the runs decide exactly what the
steps one at a time would. Pure.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import schemas
from service.reprocess.replay_order import Close, Plan

BATCH = 1000


@dataclass(frozen=True, slots=True)
class DecideRun:
    events: tuple[schemas.InputEvent, ...]


@dataclass(frozen=True, slots=True)
class CloseRun:
    customers: tuple[UUID, ...]
    now: datetime


Run = DecideRun | CloseRun


def touches(event: schemas.InputEvent, owners: Mapping[UUID, UUID]) -> tuple[Hashable, ...]:
    """What deciding `event` reads or writes: its dedupe record, its customer (the session's
    owner for an acceptance or an end; the session itself when no one owns it), and for a
    payment its payment id's outcome. (A payment whose session nobody owns was not created
    live; were it created here, its own output would already differ.) Customers and sessions
    by their integers: uuid.UUID hashes and compares in Python."""
    if isinstance(event, schemas.PaymentCompletedEvent):
        payment = event.data
        return (event.source, event.id), payment.customer_id.int, ("p", payment.payment_id)
    session = event.data.session_id
    owner = owners.get(session)
    return (event.source, event.id), ("s", session.int) if owner is None else owner.int


def runs(plan: Plan, *, size: int = BATCH) -> list[Run]:
    # Layer 2k holds decisions, layer 2k + 1 closings; `last`: the latest layer holding a step
    # that touches a thing.
    layers: list[list[schemas.InputEvent | Close]] = []
    last: dict[Hashable, int] = {}
    get = last.get
    for step in plan.steps:
        if isinstance(step, Close):
            customer = step.customer_id.int
            after = get(customer, -1)
            layer = after + 1 if after % 2 == 0 else after + 2  # a customer once a sweep
            last[customer] = layer
            item: schemas.InputEvent | Close = step
        else:
            item = step.record.event
            things = touches(item, plan.owners)
            after = -1
            for thing in things:
                at = get(thing, -1)
                if at > after:
                    after = at
            layer = after if after % 2 == 0 else after + 1
            for thing in things:
                last[thing] = layer
        while len(layers) <= layer:
            layers.append([])
        layers[layer].append(item)
    found: list[Run] = []
    for index, items in enumerate(layers):
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if index % 2 == 0:
                found.append(DecideRun(tuple(e for e in chunk if not isinstance(e, Close))))
            else:
                closes = [c for c in chunk if isinstance(c, Close)]
                found.append(
                    CloseRun(tuple(c.customer_id for c in closes), max(c.at for c in closes))
                )
    return found


def events_in(found: Sequence[Run]) -> int:
    return sum(len(r.events) for r in found if isinstance(r, DecideRun))
