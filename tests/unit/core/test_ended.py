"""R5: a live session completes when it ends, or times out at accepted_at + max_live."""

from __future__ import annotations

from uuid import UUID

import schemas
from service.core.decide import decide_ended, expire
from service.core.outcomes import Kind, Reason, Verdict
from service.core.sessions import Status, live_deadline
from tests.unit.core.builders import (
    ALICE,
    MAX_LIVE,
    POLICY,
    T0,
    TICK,
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

ACCEPTED_AT = T0 + minutes(2)
DEADLINE = ACCEPTED_AT + MAX_LIVE


def test_a_live_session_that_ends_is_completed_as_ended() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)
    event = ended(session.id, at=T0 + minutes(45))

    result = decide(event, state=snapshot(session))

    completed = only(result, schemas.SESSION_COMPLETED)
    assert completed.data == schemas.SessionCompleted(
        session_id=session.id, customer_id=ALICE, reason="ended", completed_at=T0 + minutes(45)
    )
    assert completed.causation_id == event.id
    assert completed.key == str(ALICE)
    (closed,) = result.updated
    assert closed.status is Status.COMPLETED
    assert closed.closed_at == T0 + minutes(45)
    assert closed.close_reason == "ended"
    assert result.decisions[0].outcome == Verdict(Kind.COMPLETED)


def test_an_ended_just_before_the_deadline_is_completed_as_ended() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)

    result = decide(ended(session.id, at=DEADLINE - TICK), state=snapshot(session))

    data = only(result, schemas.SESSION_COMPLETED).data
    assert isinstance(data, schemas.SessionCompleted)
    assert data.reason == "ended"


def test_an_ended_waiting_session_is_ignored() -> None:
    session = waiting("pay-1")

    result = decide(ended(session.id, at=T0 + minutes(1)), state=snapshot(session))

    assert result.emitted == ()
    assert result.updated == ()
    assert result.decisions[0].outcome == Verdict(Kind.IGNORED, Reason.WAITING)


def test_an_ended_unknown_session_is_ignored() -> None:
    outcome = decide_ended(ended(UUID(int=7), at=T0), None)

    assert outcome.verdict == Verdict(Kind.IGNORED, Reason.UNKNOWN_SESSION)
    assert outcome.emitted == () and outcome.changed == ()


def test_a_second_ended_of_a_completed_session_is_ignored() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1"), acceptance(session_of("pay-1"), at=ACCEPTED_AT)])
    store.handle([ended(session_of("pay-1"), at=T0 + minutes(30))])

    result = store.handle([ended(session_of("pay-1"), at=T0 + minutes(31))])

    assert result.emitted == ()
    assert result.decisions[0].outcome == Verdict(Kind.IGNORED, Reason.COMPLETED)


def test_an_ended_cancelled_session_is_ignored() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1")])
    store.sweep(now=T0 + minutes(15))

    result = store.handle([ended(session_of("pay-1"), at=T0 + minutes(10))])

    assert result.emitted == ()
    assert result.decisions[0].outcome == Verdict(Kind.IGNORED, Reason.CANCELLED)


def test_a_live_session_stands_until_just_before_max_live() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)

    assert live_deadline(session, POLICY) == DEADLINE
    assert expire(session, now=DEADLINE - TICK, policy=POLICY) is None


def test_a_live_session_times_out_at_accepted_at_plus_max_live_however_late_noticed() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)

    closed = expire(session, now=DEADLINE + minutes(600), policy=POLICY)

    assert closed is not None
    timed_out, emitted = closed
    assert timed_out.status is Status.COMPLETED
    assert timed_out.closed_at == DEADLINE
    assert timed_out.close_reason == "timed_out"
    assert emitted.time == DEADLINE
    assert emitted.data == schemas.SessionCompleted(
        session_id=session.id, customer_id=ALICE, reason="timed_out", completed_at=DEADLINE
    )
    assert emitted.causation_id == str(session.accepted_event_id)


def test_a_timeout_is_caused_by_the_session_accepted_event_that_started_the_timer() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1")])
    accepted = only(
        store.handle([acceptance(session_of("pay-1"), at=ACCEPTED_AT)]), schemas.SESSION_ACCEPTED
    )

    result = store.sweep(now=DEADLINE)

    assert only(result, schemas.SESSION_COMPLETED).causation_id == str(accepted.id)


def test_purge_and_sweep_publish_byte_identical_timeouts() -> None:
    purging, sweeping = InMemoryHandlers(), InMemoryHandlers()
    for store in (purging, sweeping):
        store.handle([payment("pay-1"), acceptance(session_of("pay-1"), at=ACCEPTED_AT)])

    purged = purging.handle([payment("pay-2", at=DEADLINE + minutes(7))])
    swept = sweeping.sweep(now=DEADLINE + minutes(90))

    by_purge = only(purged, schemas.SESSION_COMPLETED)
    by_sweep = only(swept, schemas.SESSION_COMPLETED)
    assert by_purge == by_sweep
    assert row(by_purge) == row(by_sweep)
    assert swept.decisions[0].outcome == Verdict(Kind.COMPLETED, Reason.TIMED_OUT)


def test_an_ended_after_the_deadline_yields_timed_out_then_is_ignored() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)

    result = decide(ended(session.id, at=DEADLINE + minutes(5)), state=snapshot(session))

    assert types(result) == [schemas.SESSION_COMPLETED]
    data = result.emitted[0].data
    assert isinstance(data, schemas.SessionCompleted)
    assert data.reason == "timed_out"
    assert data.completed_at == DEADLINE
    assert result.decisions[0].outcome == Verdict(Kind.IGNORED, Reason.COMPLETED)
    assert result.decisions[0].purged == (session.id,)


def test_an_ended_at_exactly_the_deadline_is_timed_out_like_an_expiry_at_its_deadline() -> None:
    session = live("pay-1", accepted_at=ACCEPTED_AT)

    result = decide(ended(session.id, at=DEADLINE), state=snapshot(session))

    data = only(result, schemas.SESSION_COMPLETED).data
    assert isinstance(data, schemas.SessionCompleted)
    assert data.reason == "timed_out"


def test_after_a_sweep_timed_it_out_a_late_ended_publishes_nothing() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1"), acceptance(session_of("pay-1"), at=ACCEPTED_AT)])
    store.sweep(now=DEADLINE + minutes(1))

    result = store.handle([ended(session_of("pay-1"), at=DEADLINE + minutes(2))])

    assert result.emitted == ()
    completions = [e for e in store.published if e.type == schemas.SESSION_COMPLETED]
    assert len(completions) == 1
