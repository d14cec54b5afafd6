"""The parking part of the `Store` port, held to one contract in memory and in PostgreSQL."""

from __future__ import annotations

from uuid import UUID

import pytest

from service.core.parking import ParkedEvent
from service.handlers.sweep import sweep_customers
from tests.contract.test_store import OpenStore, open_store, write
from tests.unit.core.builders import (
    ALICE,
    BOB,
    CAROL,
    MAX_LIVE,
    POLICY,
    T0,
    acceptance,
    decide,
    minutes,
    payment,
    session_of,
)

__all__ = ["open_store"]  # the fixture, parametrised over both stores


def parked(event_id: str, customer: UUID | None = ALICE, reason: str = "boom") -> ParkedEvent:
    return ParkedEvent(
        customer_id=customer,
        source="payments",
        event_id=event_id,
        type="payment.completed",
        body=b"{}",
        reason=reason,
    )


async def test_parked_events_keep_their_order_and_a_redelivered_one_is_parked_once(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        async with store.transaction():
            assert await store.park([parked("1"), parked("2", BOB), parked("3")]) == 3
        async with store.transaction():
            assert await store.park([parked("2", BOB), parked("4")]) == 1
        alice = await store.parked_events([ALICE])
        everyone = await store.parked_events()
    assert [p.event_id for p in alice] == ["1", "3", "4"]
    assert [p.event_id for p in everyone] == ["1", "2", "3", "4"]
    assert [p.seq for p in everyone] == sorted(p.seq for p in everyone)
    assert len({p.seq for p in everyone}) == 4
    assert all(p.parked_at is not None for p in everyone)
    assert everyone[0].reason == "boom" and everyone[0].body == b"{}"


async def test_a_customer_is_parked_while_any_of_their_events_is(open_store: OpenStore) -> None:
    async with open_store() as store:
        async with store.transaction():
            await store.park([parked("1"), parked("2"), parked("3", None)])
        assert await store.parked_customers([ALICE, BOB]) == {ALICE}
        assert await store.parked_totals() == (1, 3)
        first, second, _ = await store.parked_events()
        async with store.transaction():
            await store.unpark([first.seq])
        assert await store.parked_customers([ALICE]) == {ALICE}
        async with store.transaction():
            await store.unpark([second.seq])
        assert await store.parked_customers([ALICE]) == set()
        assert await store.parked_totals() == (0, 1)


async def test_parking_in_a_rolled_back_transaction_parks_nothing(open_store: OpenStore) -> None:
    async with open_store() as store:
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.park([parked("1")])
                raise RuntimeError("rolled back")
        assert await store.parked_events() == []
        assert await store.parked_customers([ALICE]) == set()


async def test_a_parked_customer_is_never_due_whatever_their_deadlines(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(
            store,
            decide(
                payment("pay-a", ALICE),
                payment("pay-b", BOB),
                payment("pay-c", CAROL),
                acceptance(session_of("pay-c"), at=T0 + minutes(1)),
            ),
        )
        async with store.transaction():
            await store.park([parked("a-later", ALICE), parked("c-later", CAROL)])
        now = T0 + MAX_LIVE + minutes(16)
        due = await store.due_customers(now=now, max_live=MAX_LIVE, limit=100)
        assert due == [BOB]
        # Released (no parked event left), a customer is due again.
        async with store.transaction():
            await store.unpark([p.seq for p in await store.parked_events([ALICE])])
        due = await store.due_customers(now=now, max_live=MAX_LIVE, limit=100)
    assert sorted(due) == sorted([ALICE, BOB])


async def test_a_customer_parked_after_the_due_list_was_read_is_left_alone_by_the_sweep(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(store, decide(payment("pay-a", ALICE), payment("pay-b", BOB)))
        now = T0 + minutes(16)
        due = await store.due_customers(now=now, max_live=MAX_LIVE, limit=100)
        # Parked in between, by a batch that committed first: the sweep reads it under the lock.
        async with store.transaction():
            await store.park([parked("a-later", ALICE)])
        result = await sweep_customers(store, due, now=now, policy=POLICY)
        still = await store.active_sessions([ALICE, BOB])
    assert sorted(due) == sorted([ALICE, BOB])
    assert [d.customer_id for d in result.decisions] == [BOB]
    assert [s.customer_id for s in still] == [ALICE]
