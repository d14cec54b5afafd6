"""Guarantees 1 and 2 of docs/contract.md on the real stack: one outcome per payment, one active
session per customer, whatever the duplicates and whichever partitions the payments come in on.

A customer's events are decided one after another and published in that order on one partition,
so once the outcome of a later payment of that customer has arrived, anything the earlier
events caused has arrived too: that is how these tests know nothing more is coming.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

import schemas
from service.adapters import postgres
from tests.fault.tools import outcomes_by_payment, wall_now
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.integration


def _customer_events(outcomes: Outcomes, customer: uuid.UUID) -> list[schemas.OutputEvent]:
    key = str(customer).encode()
    return [schemas.decode_output(r.value) for r in outcomes.records if r.key == key]


async def test_the_same_event_delivered_twice_gets_one_outcome(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    customer, mechanic, now = uuid.uuid4(), uuid.uuid4(), wall_now()
    session_id = schemas.session_id_for_payment("pi_1")
    minute = timedelta(minutes=1)
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        # Twice back to back (one batch, most likely), then once more after it was decided.
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1")
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1")
        await outcomes.wait_count(1)
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1")
        # An acceptance has no other dedupe: decided again, it would lose to itself.
        await producer.accept(session_id, mechanic, time=now + minute, event_id="evt_acc")
        await producer.accept(session_id, mechanic, time=now + minute, event_id="evt_acc")
        await outcomes.wait_count(2)
        await producer.accept(session_id, mechanic, time=now + minute, event_id="evt_acc")
        # The last of each partition: once their outcomes are in, so is anything before them.
        await producer.pay(customer, "pi_2", time=now + 2 * minute, event_id="evt_2")
        await producer.accept(session_id, uuid.uuid4(), time=now + 2 * minute, event_id="evt_3")
        await outcomes.wait_count(4)
        await asyncio.sleep(0.3)
    assert outcomes.events[0].type == schemas.SESSION_CREATED
    assert sorted((e.type, e.causationid) for e in outcomes.events) == sorted(
        [
            (schemas.SESSION_CREATED, "evt_1"),
            (schemas.SESSION_ACCEPTED, "evt_acc"),
            (schemas.SESSION_REJECTED, "evt_2"),
            (schemas.SESSION_ACCEPTANCE_REJECTED, "evt_3"),
        ]
    )
    assert await pool.fetchval("SELECT count(*) FROM payments") == 2
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 4


async def test_the_same_payment_under_new_event_ids_gets_one_outcome(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    customer, now = uuid.uuid4(), wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1")
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1_retry")
        await outcomes.wait_count(1)
        await producer.pay(customer, "pi_1", time=now, event_id="evt_1_retry_again")
        await producer.pay(customer, "pi_2", time=now + timedelta(minutes=1))
        await outcomes.wait_for(lambda o: bool(o.of_type(schemas.SESSION_REJECTED)))
    assert outcomes_by_payment(outcomes.events) == {
        "pi_1": [schemas.SESSION_CREATED],
        "pi_2": [schemas.SESSION_REJECTED],
    }
    assert len(outcomes.records) == 2
    [created] = outcomes.of_type(schemas.SESSION_CREATED)
    assert created.causationid == "evt_1"
    rows = await pool.fetch("SELECT payment_id, event_id, outcome FROM payments ORDER BY 1")
    assert tuple(rows[0]) == ("pi_1", "evt_1", "created")
    assert len(rows) == 2


async def test_two_payments_of_one_customer_on_two_partitions_give_one_session_and_one_rejection(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    customers = [uuid.uuid4() for _ in range(8)]
    now = wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await asyncio.gather(
            *(
                producer.pay(customer, f"pi_{i}_{part}", time=now, partition=part)
                for i, customer in enumerate(customers)
                for part in (0, 1)
            )
        )
        await outcomes.wait_count(2 * len(customers))
        await asyncio.gather(
            *(
                producer.pay(c, f"pi_{i}_late", time=now + timedelta(minutes=1), partition=2)
                for i, c in enumerate(customers)
            )
        )
        await outcomes.wait_count(3 * len(customers))
    assert len(outcomes.records) == 3 * len(customers)
    for i, customer in enumerate(customers):
        events = _customer_events(outcomes, customer)
        by_payment = outcomes_by_payment(events)
        assert sorted(t for p in (f"pi_{i}_0", f"pi_{i}_1") for t in by_payment[p]) == [
            schemas.SESSION_CREATED,
            schemas.SESSION_REJECTED,
        ]
        assert by_payment[f"pi_{i}_late"] == [schemas.SESSION_REJECTED]
        [created] = [e.data for e in events if isinstance(e.data, schemas.SessionCreated)]
        rejections = [e.data for e in events if isinstance(e.data, schemas.SessionRejected)]
        # The loser and the late payment both name the winner's session as the active one.
        assert [r.active_session_id for r in rejections] == [created.session_id] * 2
    actives = await pool.fetch(
        "SELECT customer_id, count(*) AS n FROM sessions "
        "WHERE status IN ('waiting', 'live') GROUP BY customer_id"
    )
    assert sorted(r["customer_id"] for r in actives) == sorted(customers)
    assert {r["n"] for r in actives} == {1}


async def test_the_database_refuses_a_second_active_session_whatever_the_code_does(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    customer, now = uuid.uuid4(), wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=now)
        await outcomes.wait_count(1)
    insert = (
        "INSERT INTO sessions (id, customer_id, payment_id, session_type, status, created_at, "
        "expires_at, created_event_id, mechanic_id, accepted_at, closed_at, close_reason) "
        "VALUES ($1, $2, $3, 'video', $4, $5::timestamptz, "
        "$5::timestamptz + interval '15 minutes', $6, $7, $8, $9, $10)"
    )
    mechanic = uuid.uuid4()
    for status, accepted_at in (("waiting", None), ("live", now)):
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await pool.execute(
                insert,
                uuid.uuid4(),
                customer,
                f"pi_{status}",
                status,
                now,
                uuid.uuid4(),
                mechanic,
                accepted_at,
                None,
                None,
            )
        assert refused.value.constraint_name == "sessions_one_active_per_customer"
    # Closed sessions are not active: any number of them may sit beside the active one.
    await pool.execute(
        insert,
        uuid.uuid4(),
        customer,
        "pi_old",
        "cancelled",
        now,
        uuid.uuid4(),
        None,
        None,
        now,
        "expired",
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sessions "
            "WHERE customer_id = $1 AND status IN ('waiting', 'live')",
            customer,
        )
        == 1
    )
