"""Timers on the real stack: a waiting session expires (guarantee 3), a live session whose
`session.ended` never comes times out. The purge inside a customer's transaction and the sweeper
close a session with the very same event, at its deadline, not at the moment it was noticed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from tests.fault.tools import wall_now
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.integration

TTL = timedelta(minutes=15)


async def test_a_stale_waiting_session_is_cancelled_before_the_next_payment_is_decided(
    make_settings: Any, pool: postgres.Pool
) -> None:
    # No sweep after the one at start-up: only the purge of the next payment can cancel it.
    settings = make_settings(sweep_interval_seconds=3600)
    customer, warmup = uuid.uuid4(), uuid.uuid4()
    paid = wall_now() - timedelta(hours=2)
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(warmup, "pi_warmup", time=wall_now())
        await outcomes.wait_count(1)  # the service is up and its first sweep is behind it
        await producer.pay(customer, "pi_1", time=paid)
        await outcomes.wait_count(2)
        await asyncio.sleep(0.3)  # long enough for an unwanted sweep to show
        assert len(outcomes.records) == 2
        await producer.pay(customer, "pi_2", time=paid + timedelta(hours=1))
        await outcomes.wait_count(4)
    key = str(customer).encode()
    mine = [r for r in outcomes.records if r.key == key]
    created, cancelled, created_again = (schemas.decode_output(r.value) for r in mine)
    assert len({r.partition for r in mine}) == 1
    assert isinstance(created.data, schemas.SessionCreated)
    assert isinstance(cancelled.data, schemas.SessionCancelled)
    assert isinstance(created_again.data, schemas.SessionCreated)
    assert created.data.payment_id == "pi_1" and created_again.data.payment_id == "pi_2"
    assert cancelled.data.session_id == created.data.session_id
    assert cancelled.data.reason == "expired"
    assert cancelled.data.cancelled_at == created.data.expires_at == paid + TTL
    assert cancelled.time == created.data.expires_at
    # Caused by the event that started the timer, not by pi_2: the sweeper makes this same id.
    assert cancelled.causationid == created.id
    assert cancelled.id == str(
        schemas.output_event_id(created.id, schemas.SESSION_CANCELLED, cancelled.subject or "")
    )
    row = await pool.fetchrow(
        "SELECT status, closed_at FROM sessions WHERE id = $1", created.data.session_id
    )
    assert row is not None
    assert (row["status"], row["closed_at"]) == ("cancelled", paid + TTL)


@pytest.mark.timeout(60)
async def test_the_sweeper_cancels_an_expired_waiting_session_once_even_with_two_instances(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(sweep_interval_seconds=0.5)
    count = 10
    customers = [uuid.uuid4() for _ in range(count)]
    seen: dict[uuid.UUID, datetime] = {}  # session -> when it was first seen cancelled

    async def watch_cancellations() -> None:
        while len(seen) < count:
            rows = await pool.fetch("SELECT id FROM sessions WHERE status = 'cancelled'")
            now = datetime.now(UTC)
            for row in rows:
                seen.setdefault(row["id"], now)
            await asyncio.sleep(0.05)

    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),
        running(settings),
    ):
        await producer.pay(uuid.uuid4(), "pi_warmup", time=wall_now())
        await outcomes.wait_count(1)
        # Expiring a few seconds from now, by the wall clock; no further event for anyone.
        paid = wall_now() - TTL + timedelta(seconds=3)
        await asyncio.gather(
            *(producer.pay(c, f"pi_{i}", time=paid) for i, c in enumerate(customers))
        )
        await asyncio.wait_for(watch_cancellations(), timeout=20)
        await outcomes.wait_for(lambda o: len(o.of_type(schemas.SESSION_CANCELLED)) >= count)
        await asyncio.sleep(1.5)  # three more sweeps by each instance
    cancelled = outcomes.of_type(schemas.SESSION_CANCELLED)
    assert len(cancelled) == count
    assert len({e.subject for e in cancelled}) == count
    expires_at = paid + TTL
    for event in cancelled:
        assert isinstance(event.data, schemas.SessionCancelled)
        assert event.data.cancelled_at == expires_at
    # Never before its deadline, and no later than a sweep interval after it (plus a sweep's
    # own time on a busy machine).
    for session_id, when in seen.items():
        lateness = (when - expires_at).total_seconds()
        assert 0 <= lateness < settings.sweep_interval_seconds + 2.0, (session_id, lateness)
    rows = await pool.fetch(
        "SELECT status, closed_at FROM sessions WHERE payment_id <> 'pi_warmup'"
    )
    assert {(r["status"], r["closed_at"]) for r in rows} == {("cancelled", expires_at)}


@pytest.mark.timeout(60)
async def test_a_live_session_whose_end_never_comes_is_completed_as_timed_out_by_the_sweeper(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(max_live_seconds=60, sweep_interval_seconds=0.5)
    customer, mechanic = uuid.uuid4(), uuid.uuid4()
    paid = wall_now() - timedelta(minutes=10)
    accepted_at = paid + timedelta(minutes=5)  # before expiry; max_live is long past by now
    session_id = schemas.session_id_for_payment("pi_1")
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=paid)
        await outcomes.wait_count(1)
        await producer.accept(session_id, mechanic, time=accepted_at)
        await outcomes.wait_for(lambda o: bool(o.of_type(schemas.SESSION_COMPLETED)))
        # The late end is a no-op; a new payment shows the customer is free again.
        await producer.end(session_id, time=wall_now())
        await producer.pay(customer, "pi_2", time=wall_now())
        await outcomes.wait_count(4)
    _, accepted, completed, created_again = outcomes.events
    assert [e.type for e in outcomes.events] == [
        schemas.SESSION_CREATED,
        schemas.SESSION_ACCEPTED,
        schemas.SESSION_COMPLETED,
        schemas.SESSION_CREATED,
    ]
    assert isinstance(completed.data, schemas.SessionCompleted)
    assert completed.data.reason == "timed_out"
    assert completed.data.completed_at == accepted_at + timedelta(seconds=60)
    assert completed.time == completed.data.completed_at
    assert completed.causationid == accepted.id
    assert isinstance(created_again.data, schemas.SessionCreated)
    assert created_again.data.payment_id == "pi_2"
    row = await pool.fetchrow("SELECT status, close_reason FROM sessions WHERE id = $1", session_id)
    assert row is not None
    assert (row["status"], row["close_reason"]) == ("completed", "timed_out")
