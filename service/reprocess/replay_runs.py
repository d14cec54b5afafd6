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
steps one at a time would. And steps touching nothing in common, transitively, can be applied
by different processes (`parts`): each part's runs in order, the parts at the same time. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import schemas
from service.reprocess.replay_order import Close, InputRecord, Plan

BATCH = 1000


@dataclass(frozen=True, slots=True)
class DecideRun:
    records: tuple[InputRecord, ...]

    @property
    def events(self) -> tuple[schemas.InputEvent, ...]:
        return tuple(r.event for r in self.records)


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
    return parts(plan, 1, size=size)[0]


def parts(
    plan: Plan,
    count: int,
    *,
    pinned: Collection[tuple[str, str]] = (),
    size: int = BATCH,
    costs: Sequence[float] = (),
) -> list[list[Run]]:
    """The runs, split into `count` parts over disjoint sets of what the steps touch: each
    part's runs, applied in order, decide what the steps one at a time would, whatever the
    other parts do meanwhile. A step's layer depends only on the steps it shares something
    with, so the parts together hold the runs of one part, each split. The inputs `pinned`
    (by source and id), and whatever shares something with them, go to the first part.
    Parts are balanced by their number of steps, each step weighing its part's `costs` (1
    each when not given), so that they end together; some may be empty."""
    # Layer 2k holds decisions, layer 2k + 1 closings; `last`: the latest layer holding a step
    # that touches a thing. `group`: which group of steps sharing things a thing is in, and
    # `merged` which group a group was merged into (few are: a payment id or an input sent for
    # two customers).
    placed: list[tuple[int, int, InputRecord | Close]] = []
    last: dict[Hashable, int] = {}
    group: dict[Hashable, int] = {}
    merged: list[int] = []
    get, group_of = last.get, group.get
    for step in plan.steps:
        if isinstance(step, Close):
            customer = step.customer_id.int
            after = get(customer, -1)
            layer = after + 1 if after % 2 == 0 else after + 2  # a customer once a sweep
            last[customer] = layer
            item: InputRecord | Close = step
            things: tuple[Hashable, ...] = (customer,)
        else:
            item = step.record
            things = touches(item.event, plan.owners)
            after = -1
            for thing in things:
                at = get(thing, -1)
                if at > after:
                    after = at
            layer = after if after % 2 == 0 else after + 1
            for thing in things:
                last[thing] = layer
        placed.append((layer, _grouped(things, group, group_of, merged), item))
    root = [_root(merged, g) for g in range(len(merged))]
    if costs and len(costs) != count:
        raise ValueError(f"{len(costs)} costs for {count} parts")
    share = _shares(placed, root, list(costs) or [1.0] * count, set(pinned))
    layers: list[list[list[InputRecord | Close]]] = [[] for _ in range(count)]
    for layer, g, item in placed:
        into = layers[share[root[g]]]
        while len(into) <= layer:
            into.append([])
        into[layer].append(item)
    return [_chunked(part, size) for part in layers]


def _grouped(
    things: tuple[Hashable, ...],
    group: dict[Hashable, int],
    group_of: Callable[[Hashable], int | None],
    merged: list[int],
) -> int:
    """The group of a step touching `things`: a new one, or the one they are in, the groups
    they were in merged into it."""
    found = -1
    for thing in things:
        g = group_of(thing)
        if g is None:
            continue
        g = _root(merged, g)
        if found < 0:
            found = g
        elif g != found:
            merged[g] = found
    if found < 0:
        found = len(merged)
        merged.append(found)
    for thing in things:
        group[thing] = found
    return found


def _root(merged: list[int], g: int) -> int:
    while merged[g] != g:
        merged[g] = merged[merged[g]]
        g = merged[g]
    return g


def _shares(
    placed: Sequence[tuple[int, int, InputRecord | Close]],
    root: Sequence[int],
    costs: Sequence[float],
    pinned: set[tuple[str, str]],
) -> dict[int, int]:
    """Group -> part: pinned groups to the first; the others, largest first, each to the part
    where it ends soonest (steps so far and its own, times the part's cost of a step)."""
    steps: dict[int, int] = {}
    first: set[int] = set()
    for _, g, item in placed:
        r = root[g]
        steps[r] = steps.get(r, 0) + 1
        if pinned and not isinstance(item, Close) and item.identity in pinned:
            first.add(r)
    share = dict.fromkeys(first, 0)
    loads = [0] * len(costs)
    loads[0] = sum(steps[r] for r in first)
    for r in sorted(steps.keys() - first, key=lambda r: (-steps[r], r)):
        ends = [(load + steps[r]) * cost for load, cost in zip(loads, costs, strict=True)]
        part = ends.index(min(ends))
        share[r] = part
        loads[part] += steps[r]
    return share


def _chunked(layers: list[list[InputRecord | Close]], size: int) -> list[Run]:
    found: list[Run] = []
    for index, items in enumerate(layers):
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if index % 2 == 0:
                found.append(DecideRun(tuple(r for r in chunk if not isinstance(r, Close))))
            else:
                closes = [c for c in chunk if isinstance(c, Close)]
                found.append(
                    CloseRun(tuple(c.customer_id for c in closes), max(c.at for c in closes))
                )
    return found


def events_in(found: Sequence[Run]) -> int:
    return sum(len(r.events) for r in found if isinstance(r, DecideRun))
