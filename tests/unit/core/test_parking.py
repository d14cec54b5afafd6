"""Parking through the real handlers on the in-memory store: a poison event's customer is set
aside with their later events, in order, and a release decides the parked events once, in order
(finding the poison is tests/unit/handlers/test_poison.py's)."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from service.adapters.memory_store import MemoryDatabase
from service.core.parking import (
    key_of,
    owners_in_batch,
    set_aside,
)
from service.handlers.release import release_parked
from tests.unit.core.builders import ALICE, BOB, CAROL, POLICY, T0, acceptance, minutes, payment
from tests.unit.core.builders import session_of as session_for
from tests.unit.handlers.memory_decider import decider

pytestmark = pytest.mark.timeout(30)


def stream() -> list[schemas.InputEvent]:
    return [
        payment("bob-1", BOB),
        payment("alice-1", ALICE),
        payment("carol-1", CAROL, at=T0 + minutes(1)),
        acceptance(session_for("alice-1"), at=T0 + minutes(2)),
        acceptance(session_for("bob-1"), at=T0 + minutes(3)),
    ]


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
