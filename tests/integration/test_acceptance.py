"""`mechanic.accepted` and `session.ended` on the real stack: the first acceptance of a waiting
session before its deadline wins, every other acceptance gets its reason, and a live session
that ends is completed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.bootstrap.service import build_sweeper
from tests.fault.tools import wait_drained, wall_now
from tests.harness import Outcomes, Producer, acceptance, running

pytestmark = pytest.mark.integration

TTL = timedelta(minutes=15)


def _of_session(outcomes: Outcomes, session_id: uuid.UUID) -> list[schemas.OutputEvent]:
    return [e for e in outcomes.events if e.subject == str(session_id)]


def _rejection_reasons(events: list[schemas.OutputEvent]) -> list[str]:
    return [e.data.reason for e in events if isinstance(e.data, schemas.SessionAcceptanceRejected)]


async def test_two_mechanics_accepting_at_once_give_one_acceptance_and_one_already_accepted(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    now = wall_now()
    customers = [uuid.uuid4() for _ in range(5)]
    sessions = [schemas.session_id_for_payment(f"pi_{i}") for i in range(len(customers))]
    mechanics = {s: (uuid.uuid4(), uuid.uuid4()) for s in sessions}
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await asyncio.gather(
            *(producer.pay(c, f"pi_{i}", time=now) for i, c in enumerate(customers))
        )
        await outcomes.wait_count(len(customers))
        # The two acceptances of a session on two partitions: decided by different batches or
        # in one, never seeing each other's effect except through the customer's lock.
        await asyncio.gather(
            *(
                producer.send(
                    settings.topic_acceptances,
                    acceptance(s, mechanic, time=now + timedelta(minutes=1)),
                    key=str(s).encode(),
                    partition=part,
                )
                for s in sessions
                for part, mechanic in enumerate(mechanics[s])
            )
        )
        await outcomes.wait_count(3 * len(customers))
    assert len(outcomes.records) == 3 * len(customers)
    for session_id in sessions:
        events = _of_session(outcomes, session_id)
        [accepted] = [e.data for e in events if isinstance(e.data, schemas.SessionAccepted)]
        [lost] = [e.data for e in events if isinstance(e.data, schemas.SessionAcceptanceRejected)]
        assert lost.reason == "already_accepted"
        assert {accepted.mechanic_id, lost.mechanic_id} == set(mechanics[session_id])
        row = await pool.fetchrow(
            "SELECT status, mechanic_id FROM sessions WHERE id = $1", session_id
        )
        assert row is not None
        assert (row["status"], row["mechanic_id"]) == ("live", accepted.mechanic_id)


async def test_an_acceptance_at_or_after_the_deadline_is_refused_as_expired_and_cancels_the_session(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer, mechanic, now = uuid.uuid4(), uuid.uuid4(), wall_now()
    session_id = schemas.session_id_for_payment("pi_1")
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=now)
        await outcomes.wait_count(1)
        # Not yet expired by the wall clock (no sweep can have cancelled it): the acceptance's
        # own time, exactly the deadline, is what counts.
        await producer.accept(session_id, mechanic, time=now + TTL)
        await outcomes.wait_count(3)
    created, cancelled, refused = outcomes.events
    assert (cancelled.type, refused.type) == (
        schemas.SESSION_CANCELLED,
        schemas.SESSION_ACCEPTANCE_REJECTED,
    )
    assert isinstance(cancelled.data, schemas.SessionCancelled)
    assert cancelled.data.cancelled_at == now + TTL
    assert cancelled.causationid == created.id
    assert isinstance(refused.data, schemas.SessionAcceptanceRejected)
    assert (refused.data.reason, refused.data.mechanic_id) == ("expired", mechanic)
    assert outcomes.records[2].key == str(customer).encode()


async def test_an_acceptance_of_an_unknown_session_is_refused_and_keyed_by_the_session_id(
    make_settings: Any,
) -> None:
    settings = make_settings()
    session_id, mechanic = uuid.uuid4(), uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.accept(session_id, mechanic, time=wall_now())
        [refused] = await outcomes.wait_count(1)
    assert isinstance(refused.data, schemas.SessionAcceptanceRejected)
    assert (refused.data.reason, refused.data.session_id) == ("unknown_session", session_id)
    assert outcomes.records[0].key == str(session_id).encode()


async def test_a_live_session_that_ends_is_completed_and_a_later_acceptance_is_refused_as_completed(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer, now = uuid.uuid4(), wall_now()
    first, second = uuid.uuid4(), uuid.uuid4()
    session_id = schemas.session_id_for_payment("pi_1")
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=now)
        await outcomes.wait_count(1)
        await producer.accept(session_id, first, time=now + timedelta(minutes=1))
        await outcomes.wait_count(2)
        await producer.end(session_id, time=now + timedelta(minutes=30), event_id="evt_end")
        await outcomes.wait_count(3)
        await producer.accept(session_id, second, time=now + timedelta(minutes=2))
        await outcomes.wait_count(4)
        # A second end of a completed session decides nothing; the customer is free again.
        await producer.end(session_id, time=now + timedelta(minutes=31))
        await producer.pay(customer, "pi_2", time=now + timedelta(minutes=40))
        await outcomes.wait_count(5)
        await wait_drained(settings)
    assert [e.type for e in outcomes.events] == [
        schemas.SESSION_CREATED,
        schemas.SESSION_ACCEPTED,
        schemas.SESSION_COMPLETED,
        schemas.SESSION_ACCEPTANCE_REJECTED,
        schemas.SESSION_CREATED,
    ]
    assert len(outcomes.records) == 5
    completed, refused = outcomes.events[2], outcomes.events[3]
    assert isinstance(completed.data, schemas.SessionCompleted)
    assert completed.data.reason == "ended"
    assert completed.data.completed_at == now + timedelta(minutes=30)
    assert completed.causationid == "evt_end"
    assert _rejection_reasons([refused]) == ["completed"]


async def test_an_acceptance_stamped_before_expiry_decided_after_the_sweep_is_refused_as_cancelled(
    make_settings: Any, pool: postgres.Pool
) -> None:
    """The rule: whichever is decided first under the customer's lock wins. A cancellation
    already published stands (the customer may have been told, the payment refunded), so a
    mechanic's acceptance stamped a second before the deadline but decided after the sweep is
    refused as `cancelled`, not `expired` (its own time is before the deadline)."""
    settings = make_settings(sweep_interval_seconds=0.2)
    customer, mechanic = uuid.uuid4(), uuid.uuid4()
    paid = wall_now() - TTL - timedelta(minutes=1)  # expired a minute ago by the wall clock
    session_id = schemas.session_id_for_payment("pi_1")
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=paid)
        await outcomes.wait_for(lambda o: bool(o.of_type(schemas.SESSION_CANCELLED)))
        await producer.accept(session_id, mechanic, time=paid + TTL - timedelta(seconds=1))
        await outcomes.wait_count(3)
    assert [e.type for e in outcomes.events] == [
        schemas.SESSION_CREATED,
        schemas.SESSION_CANCELLED,
        schemas.SESSION_ACCEPTANCE_REJECTED,
    ]
    assert _rejection_reasons(outcomes.events) == ["cancelled"]
    assert await pool.fetchval("SELECT status FROM sessions WHERE id = $1", session_id) == (
        "cancelled"
    )


async def test_an_acceptance_stamped_before_expiry_and_decided_before_the_sweep_wins_for_good(
    make_settings: Any, pool: postgres.Pool
) -> None:
    """The other order of the same race: the acceptance is decided first (no sweep since
    start-up), so the session is live, and a sweep afterwards finds nothing to cancel."""
    settings = make_settings(sweep_interval_seconds=3600)
    customer, warmup, mechanic = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    paid = wall_now() - TTL - timedelta(minutes=1)
    session_id = schemas.session_id_for_payment("pi_1")
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(warmup, "pi_warmup", time=wall_now())
        await outcomes.wait_count(1)  # up, and past its start-up sweep
        await producer.pay(customer, "pi_1", time=paid)
        # Topics have no order between them: the acceptance goes once the session exists.
        await outcomes.wait_count(2)
        await producer.accept(session_id, mechanic, time=paid + TTL - timedelta(seconds=1))
        await outcomes.wait_count(3)
        swept = await build_sweeper(settings, pool).sweep_once()
        await asyncio.sleep(0.5)
    assert [e.type for e in outcomes.events[1:]] == [
        schemas.SESSION_CREATED,
        schemas.SESSION_ACCEPTED,
    ]
    assert all(not r.emitted for r in swept)
    assert await pool.fetchval("SELECT status FROM sessions WHERE id = $1", session_id) == "live"


@pytest.mark.timeout(60)
async def test_acceptances_racing_the_sweeper_end_either_live_or_cancelled_never_both(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(sweep_interval_seconds=0.05)
    count = 20
    customers = [uuid.uuid4() for _ in range(count)]
    # Expiring by the wall clock shortly after they are created.
    paid = wall_now() - TTL + timedelta(seconds=3)
    expires_at = paid + TTL
    sessions = [schemas.session_id_for_payment(f"pi_{i}") for i in range(count)]
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await asyncio.gather(
            *(producer.pay(c, f"pi_{i}", time=paid) for i, c in enumerate(customers))
        )
        await outcomes.wait_count(count)
        # All stamped a second before the deadline, arriving from just before the sweeps that
        # cancel them to just after.
        await asyncio.sleep((expires_at - wall_now()).total_seconds() - 0.5)
        for session_id in sessions:
            await producer.accept(session_id, uuid.uuid4(), time=expires_at - timedelta(seconds=1))
            await asyncio.sleep(0.03)
        answers = {schemas.SESSION_ACCEPTED, schemas.SESSION_ACCEPTANCE_REJECTED}
        await outcomes.wait_for(
            lambda o: len({e.subject for e in o.events if e.type in answers}) == count
        )
        await asyncio.sleep(0.5)  # time for anything wrong to follow
    endings: dict[str, int] = {}
    for session_id in sessions:
        events = _of_session(outcomes, session_id)
        types = [e.type for e in events]
        if schemas.SESSION_ACCEPTED in types:
            assert types == [schemas.SESSION_CREATED, schemas.SESSION_ACCEPTED], events
        else:
            # Cancelled first (the sweep won): the acceptance is refused, as cancelled.
            assert types == [
                schemas.SESSION_CREATED,
                schemas.SESSION_CANCELLED,
                schemas.SESSION_ACCEPTANCE_REJECTED,
            ], events
            assert _rejection_reasons(events) == ["cancelled"], events
        endings[types[1]] = endings.get(types[1], 0) + 1
    rows = await pool.fetch("SELECT status, count(*) AS n FROM sessions GROUP BY status")
    assert {r["status"]: r["n"] for r in rows} == {
        {schemas.SESSION_ACCEPTED: "live", schemas.SESSION_CANCELLED: "cancelled"}[t]: n
        for t, n in endings.items()
    }
