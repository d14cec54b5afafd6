"""The poison policy through the real handlers on the in-memory store: a failing batch is retried,
then searched for the events that fail, which are parked with their customers' later events while
everyone else is decided; an outage is never poison; a search finds a bounded number at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from service.adapters.failures import is_outage
from service.adapters.memory_store import MemoryDatabase
from service.core.batch import BatchResult
from service.core.owners import customer_of
from service.core.parking import BEHIND_PARKED, EventKey, key_of, owners_in_batch
from service.core.ports import DecideBatch
from service.handlers.consume import FailpointHit
from service.handlers.poison import MAX_NEW_POISON, PoisonGuard, PoisonPolicy, find_poison
from service.handlers.release import release_parked
from service.observe.metrics import REGISTRY
from service.observe.poison_watch import PoisonWatch
from tests.unit.core.builders import ALICE, BOB, CAROL, POLICY, T0, acceptance, minutes, payment
from tests.unit.core.builders import session_of as session_for
from tests.unit.handlers.memory_decider import decider
from tests.unit.test_failure_classes import FAILOVER_CLASS

pytestmark = pytest.mark.timeout(30)

NO_TRACES: Mapping[str, str] = {}


def guard(
    decide: DecideBatch, events: Sequence[schemas.InputEvent], *, retries: int
) -> PoisonGuard:
    return PoisonGuard(decide, PoisonPolicy(retries, is_outage, PoisonWatch()), events, NO_TRACES)


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
    poison = await find_poison(decider(store, frozenset({ALICE})), events, {}, is_outage=is_outage)
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
    attempt = guard(release, [p.event() for p in before], retries=1)
    retried = REGISTRY.get_sample_value("fulfillment_poison_retries_total") or 0.0
    with pytest.raises(FailpointHit):  # the one retry allowed
        await attempt()
    assert REGISTRY.get_sample_value("fulfillment_poison_retries_total") == retried + 1
    result = await attempt()  # then contained
    assert result.decisions == () and result.parked == ()
    assert await store.parked_events() == before
    assert db.tables.payments == {}


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
        result = await guard(decider(store, failpoint=failing), events, retries=0)()
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
    attempt = guard(decider(store, failpoint=frozenset(customers)), events, retries=0)
    for found in (MAX_NEW_POISON, 2 * MAX_NEW_POISON):
        with pytest.raises(FailpointHit):  # paused: the loop backs off before the next step
            await attempt()
        assert len(attempt.poison) == found
        assert db.tables.parked == []  # nothing committed while the batch still fails
    result = await attempt()
    assert [p.event_id for p in result.parked] == [e.id for e in events]


@pytest.mark.parametrize("error", FAILOVER_CLASS, ids=lambda e: e.__name__)
def test_a_batch_failing_with_an_outage_is_retried_past_the_poison_retries_and_parks_nobody(
    error: type[Exception],
) -> None:
    calls: list[Mapping[EventKey, str] | None] = []

    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        calls.append(poison)
        raise error("failing over")

    async def attempts() -> None:
        attempt = guard(decide, [payment("pi_1", ALICE), payment("pi_2", BOB)], retries=2)
        for _ in range(20):
            with pytest.raises(error):
                await attempt()
        assert attempt.poison == {}

    asyncio.run(attempts())
    assert len(calls) == 20
    assert all(not poison for poison in calls)


async def test_every_attempt_and_trial_of_a_batch_decides_with_the_batch_s_trace_context() -> None:
    seen: list[tuple[Mapping[str, str] | None, bool]] = []
    events = [payment("pi_1", ALICE), payment("pi_2", BOB)]
    traces = {events[0].id: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    failing_id = events[0].id  # fails until parked

    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        seen.append((traces, trial))
        if not poison and any(e.id == failing_id for e in events):
            raise ValueError("a bug")
        return BatchResult((), (), (), (), ())

    policy = PoisonPolicy(0, is_outage, PoisonWatch())
    await PoisonGuard(decide, policy, events, traces)()
    assert any(trial for _, trial in seen) and any(not trial for _, trial in seen)
    assert all(given == traces for given, _ in seen)
