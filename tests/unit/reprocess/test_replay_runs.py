"""The rebuild's batches: steps of different customers commute, so a rebuild groups them into
few transactions, and what it re-makes is what the steps one at a time re-make."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from random import Random
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.reprocess.changelog import Published
from service.reprocess.replay_order import Close, Decide, InputRecord, Plan, in_published_order
from service.reprocess.replay_runs import (
    CloseRun,
    DecideRun,
    Run,
    events_in,
    parts,
    runs,
    touches,
)
from tests.unit.core.builders import ALICE, BOB, CAROL, T0, InMemoryHandlers, minutes, payment
from tests.unit.reprocess.test_replay_order import apply_run, live_run, rebuilt

# More closings than the order's own tests: the sweeper is what splits batches.
histories = st.lists(
    st.tuples(
        st.sampled_from(["pay", "repay", "accept", "end", "sweep", "sweep"]),
        st.integers(0, 11),
        st.integers(0, 300),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(histories, st.integers(1, 12))
def test_batched_runs_re_make_what_the_steps_one_at_a_time_re_make(
    actions: list[tuple[str, int, int]], size: int
) -> None:
    live = live_run(actions)

    assert rebuilt(live, size=size) == rebuilt(live)


def _steps_by_thing(plan: Plan, found: list[Run]) -> tuple[dict[object, list[object]], ...]:
    """Each customer's (and payment id's, input's) steps, as the plan orders them and as the
    runs apply them."""
    planned: dict[object, list[object]] = defaultdict(list)
    applied: dict[object, list[object]] = defaultdict(list)
    for step in plan.steps:
        if isinstance(step, Close):
            planned[step.customer_id.int].append(("close", step.customer_id))
        else:
            for thing in touches(step.record.event, plan.owners):
                planned[thing].append(step.record.event.id)
    for run in found:
        if isinstance(run, CloseRun):
            for customer in run.customers:
                applied[customer.int].append(("close", customer))
        else:
            for event in run.events:
                for thing in touches(event, plan.owners):
                    applied[thing].append(event.id)
    return planned, applied


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(1, 12))
def test_each_customer_s_steps_keep_their_order_in_the_runs(
    actions: list[tuple[str, int, int]], size: int
) -> None:
    live = live_run(actions)
    plan = in_published_order(list(live.partitions.values()), live.changelog)

    planned, applied = _steps_by_thing(plan, runs(plan, size=size))

    assert applied == planned


def _closing(customer: UUID, minute: int) -> Close:
    stub = Published("x", "session.cancelled", "", b"", ("", ""), {}, 0, 0, 0)
    return Close(customer, T0 + minutes(minute), stub)


def _decision(pid: str, customer: UUID, minute: int) -> Decide:
    event = payment(pid, customer, at=T0 + minutes(minute))
    return Decide(InputRecord(event, minute, "payments:0", minute))


def test_a_customer_s_closing_does_not_split_other_customers_decisions() -> None:
    # Each customer: a closing, then a decision. One at a time that alternates six times; the
    # closings commute with the other customers' steps, so: the decisions before any closing,
    # one sweep, the decisions after.
    steps: list[Decide | Close] = [_decision("first", CAROL, 0)]
    for minute, customer in enumerate((ALICE, BOB, CAROL), start=1):
        steps += [_closing(customer, minute), _decision(f"pay-{minute}", customer, minute)]
    plan = Plan(steps=steps)

    found = runs(plan)

    assert [type(r) for r in found] == [DecideRun, CloseRun, DecideRun]
    assert found[1] == CloseRun((ALICE, BOB, CAROL), T0 + minutes(3))
    assert [e.data.payment_id for e in found[0].events] == ["first"]  # type: ignore[union-attr]
    assert [e.data.payment_id for e in found[2].events] == ["pay-1", "pay-2", "pay-3"]  # type: ignore[union-attr]


def test_a_customer_closed_twice_without_a_decision_between_is_swept_twice() -> None:
    plan = Plan(steps=[_closing(ALICE, 1), _closing(ALICE, 2), _closing(BOB, 3)])

    found = runs(plan)

    assert found == [CloseRun((ALICE, BOB), T0 + minutes(3)), CloseRun((ALICE,), T0 + minutes(2))]


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(1, 12), st.integers(2, 3), st.randoms(use_true_random=False))
def test_the_runs_in_parts_applied_in_any_interleaving_re_make_the_same_outputs_and_state(
    actions: list[tuple[str, int, int]], size: int, count: int, interleaving: Random
) -> None:
    live = live_run(actions)
    plan = in_published_order(list(live.partitions.values()), live.changelog)
    one, split = InMemoryHandlers(), InMemoryHandlers()
    made_by_one = [out for run in runs(plan, size=size) for out in apply_run(one, run)]

    queues = [deque(part) for part in parts(plan, count, size=size)]
    made_in_parts = []
    while any(queues):
        queue = interleaving.choice([q for q in queues if q])
        made_in_parts += apply_run(split, queue.popleft())

    assert sorted(made_in_parts) == sorted(made_by_one)
    assert (split.sessions, split.payments) == (one.sessions, one.payments)


@settings(max_examples=300, deadline=None)
@given(histories, st.integers(2, 3), st.data())
def test_no_two_parts_touch_the_same_thing_and_the_pinned_inputs_are_in_the_first(
    actions: list[tuple[str, int, int]], count: int, data: st.DataObject
) -> None:
    live = live_run(actions)
    plan = in_published_order(list(live.partitions.values()), live.changelog)
    inputs = [s.record for s in plan.steps if isinstance(s, Decide)]
    pinned = data.draw(st.sets(st.sampled_from([r.identity for r in inputs]))) if inputs else set()

    found = parts(plan, count, pinned=pinned)

    touched: list[set[object]] = []
    for part in found:
        things: set[object] = set()
        for run in part:
            if isinstance(run, CloseRun):
                things |= {c.int for c in run.customers}
            else:
                things |= {t for e in run.events for t in touches(e, plan.owners)}
        touched.append(things)
    assert all(not a & b for a, b in itertools.combinations(touched, 2))
    first = {(e.source, e.id) for run in found[0] if isinstance(run, DecideRun) for e in run.events}
    assert pinned <= first
    assert sum(map(events_in, found)) == events_in(runs(plan))


def test_a_part_whose_steps_cost_more_is_given_fewer_so_that_the_parts_end_together() -> None:
    customers = [UUID(int=n + 1) for n in range(110)]
    plan = Plan(steps=[_decision(f"pay-{n}", c, n) for n, c in enumerate(customers)])

    even = parts(plan, 2)
    weighted = parts(plan, 2, costs=[1.0, 1.2])

    assert [events_in(p) for p in even] == [55, 55]
    assert [events_in(p) for p in weighted] == [60, 50]  # 60 x 1.0 and 50 x 1.2 end together


def test_costs_not_one_for_each_part_are_refused() -> None:
    plan = Plan(steps=[_decision("pay-1", ALICE, 1)])

    with pytest.raises(ValueError, match="3 costs for 2 parts"):
        parts(plan, 2, costs=[1.0, 1.0, 1.0])
