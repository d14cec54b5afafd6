"""R2: a waiting session expires at its `expires_at`, exactly once, whoever notices it."""

from __future__ import annotations

import schemas
from service.core.decide import expire
from service.core.outcomes import Kind, Reason, Verdict
from service.core.sessions import Status
from tests.unit.core.builders import (
    ALICE,
    BOB,
    POLICY,
    T0,
    TICK,
    TTL,
    InMemoryHandlers,
    acceptance,
    decide,
    ended,
    live,
    minutes,
    only,
    payment,
    row,
    session_of,
    snapshot,
    types,
    waiting,
)


def test_a_waiting_session_stands_until_just_before_its_deadline() -> None:
    session = waiting("pay-1")

    assert expire(session, now=session.expires_at - TICK, policy=POLICY) is None


def test_a_waiting_session_is_cancelled_at_exactly_its_deadline() -> None:
    session = waiting("pay-1")

    closed = expire(session, now=session.expires_at, policy=POLICY)

    assert closed is not None
    assert closed[0].status is Status.CANCELLED


def test_a_cancellation_is_dated_at_the_deadline_not_when_it_was_noticed() -> None:
    session = waiting("pay-1")

    closed = expire(session, now=session.expires_at + minutes(180), policy=POLICY)

    assert closed is not None
    cancelled, emitted = closed
    assert cancelled.closed_at == session.expires_at == T0 + TTL
    assert cancelled.close_reason == "expired"
    assert emitted.type == schemas.SESSION_CANCELLED
    assert emitted.time == session.expires_at
    assert emitted.key == str(ALICE)
    assert emitted.data == schemas.SessionCancelled(
        session_id=session.id,
        customer_id=ALICE,
        payment_id="pay-1",
        reason="expired",
        cancelled_at=session.expires_at,
    )


def test_a_cancellation_is_caused_by_the_session_created_event_that_started_the_timer() -> None:
    result = decide(payment("pay-1"))
    created = only(result, schemas.SESSION_CREATED)
    (session,) = result.inserted

    closed = expire(session, now=T0 + minutes(60), policy=POLICY)

    assert closed is not None
    assert closed[1].causation_id == str(created.id)
    assert str(closed[1].id) == str(
        schemas.output_event_id(str(created.id), schemas.SESSION_CANCELLED, str(session.id))
    )


def test_a_cancelled_session_is_never_cancelled_again() -> None:
    closed = expire(waiting("pay-1"), now=T0 + minutes(60), policy=POLICY)
    assert closed is not None

    assert expire(closed[0], now=T0 + minutes(600), policy=POLICY) is None


def test_a_live_session_is_not_cancelled_when_its_request_ttl_passes() -> None:
    session = live("pay-1", accepted_at=T0 + minutes(5))

    assert expire(session, now=session.expires_at + minutes(1), policy=POLICY) is None


def test_purge_and_sweep_publish_byte_identical_cancellations() -> None:
    purging, sweeping = InMemoryHandlers(), InMemoryHandlers()
    for store in (purging, sweeping):
        store.handle([payment("pay-1")])

    purged = purging.handle([payment("pay-2", at=T0 + minutes(20))])
    swept = sweeping.sweep(now=T0 + minutes(300))

    by_purge = only(purged, schemas.SESSION_CANCELLED)
    by_sweep = only(swept, schemas.SESSION_CANCELLED)
    assert by_purge == by_sweep
    assert row(by_purge) == row(by_sweep)
    assert purged.updated == swept.updated


def test_the_sweeper_run_does_not_change_what_a_cancellation_says() -> None:
    session = waiting("pay-1")

    early = InMemoryHandlers()
    early.sessions[session.id] = session
    late = InMemoryHandlers()
    late.sessions[session.id] = session

    first = early.sweep(now=session.expires_at)
    second = late.sweep(now=session.expires_at + minutes(45))

    assert [row(e) for e in first.emitted] == [row(e) for e in second.emitted]
    assert first.decisions[0].event_id == f"sweep@{session.expires_at.isoformat()}"
    assert first.decisions[0].outcome == Verdict(Kind.CANCELLED, Reason.EXPIRED)


def test_the_sweeper_closes_only_the_sessions_that_are_due() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-a", ALICE), payment("pay-b", BOB, at=T0 + minutes(10))])

    result = store.sweep(now=T0 + minutes(20))

    assert types(result) == [schemas.SESSION_CANCELLED]
    assert store.status(session_of("pay-a")) is Status.CANCELLED
    assert store.status(session_of("pay-b")) is Status.WAITING


def test_after_the_sweeper_cancelled_it_the_next_payment_does_not_cancel_it_again() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1")])
    store.sweep(now=T0 + minutes(16))

    result = store.handle([payment("pay-2", at=T0 + minutes(20))])

    assert types(result) == [schemas.SESSION_CREATED]
    assert result.decisions[0].purged == ()


def test_after_a_purge_cancelled_it_the_sweeper_does_not_cancel_it_again() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1")])
    store.handle([acceptance(session_of("pay-1"), at=T0 + minutes(16))])

    assert store.sweep(now=T0 + minutes(600)).emitted == ()
    cancellations = [e for e in store.published if e.type == schemas.SESSION_CANCELLED]
    assert len(cancellations) == 1


def test_any_event_of_the_customer_notices_the_expiry() -> None:
    session = waiting("pay-1")

    result = decide(ended(session.id, at=T0 + minutes(30)), state=snapshot(session))

    assert types(result) == [schemas.SESSION_CANCELLED]
    assert result.decisions[0].outcome == Verdict(Kind.IGNORED, Reason.CANCELLED)
    assert result.decisions[0].purged == (session.id,)
    assert result.updated[0].status is Status.CANCELLED


def test_an_event_before_the_deadline_leaves_the_waiting_session_alone() -> None:
    session = waiting("pay-1")

    result = decide(payment("pay-2", at=session.expires_at - TICK), state=snapshot(session))

    assert types(result) == [schemas.SESSION_REJECTED]
    assert result.updated == ()
