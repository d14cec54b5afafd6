"""Parking through the real handlers on the in-memory store: a poison event's customer is set
aside with their later events, in order, everyone else is decided, and a release decides the
parked events once, in order, or leaves a still-failing one (and what follows it) parked."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from service.adapters.memory_store import MemoryDatabase
from service.adapters.poison import MAX_NEW_POISON, PoisonGuard, find_poison
from service.core.batch import BatchResult
from service.core.owners import customer_of
from service.core.parking import (
    BEHIND_PARKED,
    EventKey,
    key_of,
    owners_in_batch,
    set_aside,
)
from service.core.ports import DecideBatch, Store
from service.handlers.consume import FailpointHit, handle_batch
from service.handlers.release import release_parked
from service.observe.metrics import REGISTRY
from tests.unit.core.builders import ALICE, BOB, CAROL, POLICY, T0, acceptance, minutes, payment
from tests.unit.core.builders import session_of as session_for

pytestmark = pytest.mark.timeout(30)


def decider(store: Store, failpoint: frozenset[UUID] = frozenset()) -> DecideBatch:
    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        return await handle_batch(
            store,
            events,
            policy=POLICY,
            traces=traces or {},
            poison=poison,
            trial=trial,
            failpoint=failpoint,
        )

    return decide


def stream() -> list[schemas.InputEvent]:
    return [
        payment("bob-1", BOB),
        payment("alice-1", ALICE),
        payment("carol-1", CAROL, at=T0 + minutes(1)),
        acceptance(session_for("alice-1"), at=T0 + minutes(2)),
        acceptance(session_for("bob-1"), at=T0 + minutes(3)),
    ]


async def test_a_poison_event_parks_its_customer_s_later_events_and_the_rest_is_decided() -> None:
    db = MemoryDatabase()
    store = db.store()
    events = stream()
    poison = await find_poison(decider(store, frozenset({ALICE})), events, {})
    assert list(poison) == [key_of(events[1])]
    assert "FailpointHit" in poison[key_of(events[1])]
    assert db.tables.payments == {} and db.tables.parked == []  # the search rolled back

    result = await decider(store, frozenset({ALICE}))(events, poison=poison)

    assert sorted(db.tables.payments) == ["bob-1", "carol-1"]
    assert [(p.event_id, p.customer_id) for p in db.tables.parked] == [
        (events[1].id, ALICE),
        (events[3].id, ALICE),
    ]
    assert db.tables.parked[1].reason == BEHIND_PARKED
    assert [d.event_id for d in result.decisions] == [events[0].id, events[2].id, events[4].id]


async def test_a_parked_customer_s_later_batches_are_parked_in_order() -> None:
    db = MemoryDatabase()
    store = db.store()
    events = stream()
    await decider(store)(events[:2], poison={key_of(events[1]): "boom"})
    later = [
        payment("alice-2", ALICE, at=T0 + minutes(5)),
        payment("bob-2", BOB, at=T0 + minutes(5)),
        payment("alice-3", ALICE, at=T0 + minutes(6)),
    ]
    result = await decider(store)(later)
    assert [p.event_id for p in result.parked] == [later[0].id, later[2].id]
    assert [p.event_id for p in db.tables.parked] == [events[1].id, later[0].id, later[2].id]
    assert sorted(db.tables.payments) == ["bob-1", "bob-2"]


async def test_a_release_decides_the_parked_events_once_and_in_order() -> None:
    db = MemoryDatabase()
    store = db.store()
    first = payment("alice-1", ALICE)
    second = payment("alice-2", ALICE, at=T0 + minutes(20))
    await decider(store)([first, second], poison={key_of(first): "boom"})
    parked = await store.parked_events([ALICE])

    result = await release_parked(store, parked, policy=POLICY)

    assert [d.event_id for d in result.decisions] == [first.id, second.id]
    # alice-1 made a session, which expired before alice-2 came: created, cancelled, created.
    assert [e.type for e in result.emitted] == [
        schemas.SESSION_CREATED,
        schemas.SESSION_CANCELLED,
        schemas.SESSION_CREATED,
    ]
    assert await store.parked_events() == []
    again = await release_parked(store, parked, policy=POLICY)  # a second release: nothing new
    assert again.emitted == ()


async def test_a_release_whose_first_event_still_fails_keeps_it_and_the_rest_parked_in_place() -> (
    None
):
    db = MemoryDatabase()
    store = db.store()
    events = [payment("alice-1", ALICE), payment("alice-2", ALICE, at=T0 + minutes(20))]
    await decider(store)(events, poison={key_of(events[0]): "boom"})
    before = await store.parked_events()
    broken = frozenset({ALICE})

    async def release(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        return await release_parked(
            store,
            before[: len(events)],
            policy=POLICY,
            poison=poison,
            trial=trial,
            failpoint=broken,
        )

    with pytest.raises(FailpointHit):
        await release([p.event() for p in before])
    guard = PoisonGuard(release, retries=1)
    retried = REGISTRY.get_sample_value("fulfillment_poison_retries_total") or 0.0
    with pytest.raises(FailpointHit):  # the one retry allowed
        await guard([p.event() for p in before])
    assert REGISTRY.get_sample_value("fulfillment_poison_retries_total") == retried + 1
    result = await guard([p.event() for p in before])  # then contained
    assert result.decisions == () and result.parked == ()
    assert await store.parked_events() == before
    assert db.tables.payments == {}


@given(
    customers=st.lists(st.sampled_from([ALICE, BOB, CAROL]), min_size=1, max_size=12),
    poisoned=st.sets(st.integers(0, 11)),
    held=st.sets(st.sampled_from([ALICE, BOB, CAROL])),
)
def test_set_aside_keeps_arrival_order_and_parks_everything_after_a_customer_s_first_poison(
    customers: list[UUID], poisoned: set[int], held: set[UUID]
) -> None:
    events = [payment(f"p{i}", c, at=T0 + minutes(i)) for i, c in enumerate(customers)]
    poison = {key_of(events[i]): "boom" for i in poisoned if i < len(events)}
    decide, parked = set_aside(events, owners_in_batch(events, {}), held=held, poison=poison)

    parked_ids = [p.event_id for p in parked]
    decided_ids = [e.id for e in decide]
    assert sorted(decided_ids + parked_ids) == sorted(e.id for e in events)
    assert [e.id for e in events if e.id in decided_ids] == decided_ids  # arrival order
    assert [e.id for e in events if e.id in parked_ids] == parked_ids  # arrival order
    for index, event in enumerate(events):
        customer = event.data.customer_id
        earlier_poison = any(
            key_of(e) in poison for e in events[: index + 1] if e.data.customer_id == customer
        )
        assert (event.id in parked_ids) == (customer in held or earlier_poison)


@settings(max_examples=40, deadline=None)
@given(
    script=st.lists(
        st.tuples(st.integers(0, 4), st.booleans(), st.integers(0, 40)), min_size=1, max_size=14
    ),
    bad=st.sets(st.integers(0, 4), max_size=3),
)
def test_containment_parks_exactly_the_failing_customers_and_decides_the_rest_as_if_alone(
    script: list[tuple[int, bool, int]], bad: set[int]
) -> None:
    customers = [UUID(int=i + 1) for i in range(5)]
    events: list[schemas.InputEvent] = []
    for n, (who, accept, minute) in enumerate(script):
        if accept and events:
            # An acceptance of the session of some earlier payment in the batch.
            target = events[minute % len(events)]
            if isinstance(target, schemas.PaymentCompletedEvent):
                events.append(
                    acceptance(
                        session_for(target.data.payment_id),
                        at=T0 + minutes(minute),
                        event_id=f"a{n}",
                    )
                )
                continue
        events.append(payment(f"p{n}", customers[who], at=T0 + minutes(minute)))
    failing = frozenset(customers[i] for i in bad)

    async def run() -> tuple[list[str], list[str], list[str]]:
        contained_db, alone_db = MemoryDatabase(), MemoryDatabase()
        store = contained_db.store()
        guard = PoisonGuard(decider(store, failpoint=failing), retries=0)
        result = await guard(events)
        owners = owners_in_batch(events, {})
        kept = [e for e in events if customer_of(e, owners.get) not in failing]
        alone = await decider(alone_db.store())(kept)
        parked = [p.event_id for p in contained_db.tables.parked]
        return [d.event_id for d in result.decisions], [d.event_id for d in alone.decisions], parked

    contained, alone, parked = asyncio.run(run())
    owners = owners_in_batch(events, {})
    assert contained == alone  # everyone else: the same decisions, in the same order
    assert parked == [e.id for e in events if customer_of(e, owners.get) in failing]


async def test_a_batch_failing_everywhere_is_searched_in_bounded_steps_with_backoff_between() -> (
    None
):
    db = MemoryDatabase()
    store = db.store()
    customers = [UUID(int=i + 1) for i in range(MAX_NEW_POISON * 2 + 3)]
    events = [payment(f"p{i}", c) for i, c in enumerate(customers)]
    guard = PoisonGuard(decider(store, failpoint=frozenset(customers)), retries=0)
    for found in (MAX_NEW_POISON, 2 * MAX_NEW_POISON):
        with pytest.raises(FailpointHit):  # paused: the loop backs off before the next step
            await guard(events)
        assert len(guard.poison) == found
        assert db.tables.parked == []  # nothing committed while the batch still fails
    result = await guard(events)
    assert [p.event_id for p in result.parked] == [e.id for e in events]
