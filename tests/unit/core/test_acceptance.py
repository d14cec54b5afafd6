"""R4: the first acceptance of a waiting session before its deadline wins; every other one is
rejected with the reason that tells the mechanic why."""

from __future__ import annotations

from uuid import UUID

import pytest

import schemas
from service.core.batch import BatchResult
from service.core.decide import decide_acceptance, expire
from service.core.outcomes import Kind, Reason, Verdict
from service.core.sessions import Session, Status
from tests.unit.core.builders import (
    ALICE,
    MAX_LIVE,
    MECHANIC,
    OTHER_MECHANIC,
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
    session_of,
    snapshot,
    types,
    waiting,
)


def rejection_reason(result: BatchResult) -> str:
    data = only(result, schemas.SESSION_ACCEPTANCE_REJECTED).data
    assert isinstance(data, schemas.SessionAcceptanceRejected)
    return data.reason


def cancelled(session: Session) -> Session:
    closed = expire(session, now=session.expires_at, policy=POLICY)
    assert closed is not None
    return closed[0]


def test_the_first_acceptance_of_a_waiting_session_makes_it_live() -> None:
    session = waiting("pay-1")
    event = acceptance(session.id, at=T0 + minutes(3))

    result = decide(event, state=snapshot(session))

    accepted = only(result, schemas.SESSION_ACCEPTED)
    assert accepted.data == schemas.SessionAccepted(
        session_id=session.id, customer_id=ALICE, mechanic_id=MECHANIC, accepted_at=T0 + minutes(3)
    )
    assert accepted.key == str(ALICE)
    assert accepted.causation_id == event.id
    (now_live,) = result.updated
    assert now_live.status is Status.LIVE
    assert now_live.mechanic_id == MECHANIC
    assert now_live.accepted_at == T0 + minutes(3)
    assert str(now_live.accepted_event_id) == str(accepted.id)
    assert result.decisions[0].outcome == Verdict(Kind.ACCEPTED)


def test_an_acceptance_just_before_the_deadline_wins() -> None:
    session = waiting("pay-1")

    result = decide(acceptance(session.id, at=session.expires_at - TICK), state=snapshot(session))

    assert types(result) == [schemas.SESSION_ACCEPTED]


def test_an_acceptance_of_an_unknown_session_is_rejected_keyed_by_the_session_id() -> None:
    unknown = UUID("00000000-0000-4000-8000-000000000001")

    result = decide(acceptance(unknown, at=T0))

    assert rejection_reason(result) == "unknown_session"
    rejected = only(result, schemas.SESSION_ACCEPTANCE_REJECTED)
    assert rejected.key == str(unknown)
    assert rejected.data.subject == str(unknown)
    assert result.decisions[0].outcome == Verdict(Kind.ACCEPTANCE_REJECTED, Reason.UNKNOWN_SESSION)
    assert result.decisions[0].customer_id is None


def test_an_acceptance_of_a_live_session_is_rejected_as_already_accepted() -> None:
    session = live("pay-1", accepted_at=T0 + minutes(1))

    result = decide(
        acceptance(session.id, OTHER_MECHANIC, at=T0 + minutes(2)), state=snapshot(session)
    )

    assert rejection_reason(result) == "already_accepted"
    rejected = only(result, schemas.SESSION_ACCEPTANCE_REJECTED)
    assert rejected.key == str(ALICE)
    assert rejected.data == schemas.SessionAcceptanceRejected(
        session_id=session.id, mechanic_id=OTHER_MECHANIC, reason="already_accepted"
    )
    assert result.updated == ()


def test_the_first_acceptance_in_a_batch_wins() -> None:
    session = waiting("pay-1")

    result = decide(
        acceptance(session.id, OTHER_MECHANIC, at=T0 + minutes(2)),
        acceptance(session.id, MECHANIC, at=T0 + minutes(1)),
        state=snapshot(session),
    )

    assert types(result) == [schemas.SESSION_ACCEPTED, schemas.SESSION_ACCEPTANCE_REJECTED]
    accepted = result.emitted[0].data
    assert isinstance(accepted, schemas.SessionAccepted)
    assert accepted.mechanic_id == OTHER_MECHANIC
    assert rejection_reason(result) == "already_accepted"
    (final,) = result.updated
    assert final.mechanic_id == OTHER_MECHANIC


def test_an_acceptance_of_a_completed_session_is_rejected_as_completed() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1"), acceptance(session_of("pay-1"), at=T0 + minutes(1))])
    store.handle([ended(session_of("pay-1"), at=T0 + minutes(20))])

    result = store.handle([acceptance(session_of("pay-1"), OTHER_MECHANIC, at=T0 + minutes(21))])

    assert rejection_reason(result) == "completed"


def test_an_acceptance_after_max_live_finds_the_session_timed_out_and_completed() -> None:
    session = live("pay-1", accepted_at=T0 + minutes(1))

    result = decide(
        acceptance(session.id, OTHER_MECHANIC, at=T0 + minutes(1) + MAX_LIVE),
        state=snapshot(session),
    )

    assert types(result) == [schemas.SESSION_COMPLETED, schemas.SESSION_ACCEPTANCE_REJECTED]
    assert rejection_reason(result) == "completed"


@pytest.mark.parametrize("state", ["waiting", "cancelled"])
def test_an_acceptance_at_exactly_expires_at_is_expired_whether_or_not_cancelled_yet(
    state: str,
) -> None:
    session = waiting("pay-1")
    target = session if state == "waiting" else cancelled(session)

    outcome = decide_acceptance(acceptance(session.id, at=session.expires_at), target)

    assert outcome.verdict == Verdict(Kind.ACCEPTANCE_REJECTED, Reason.EXPIRED)
    assert outcome.changed == ()


def test_an_acceptance_at_exactly_expires_at_cancels_the_session_then_is_rejected_as_expired() -> (
    None
):
    session = waiting("pay-1")

    result = decide(acceptance(session.id, at=session.expires_at), state=snapshot(session))

    assert types(result) == [schemas.SESSION_CANCELLED, schemas.SESSION_ACCEPTANCE_REJECTED]
    assert rejection_reason(result) == "expired"
    assert [s.status for s in result.updated] == [Status.CANCELLED]


def test_an_acceptance_of_an_already_cancelled_session_after_its_deadline_is_expired() -> None:
    session = cancelled(waiting("pay-1"))

    result = decide(acceptance(session.id, at=T0 + minutes(40)), state=snapshot(session))

    assert types(result) == [schemas.SESSION_ACCEPTANCE_REJECTED]
    assert rejection_reason(result) == "expired"


def test_an_acceptance_dated_before_the_deadline_of_a_cancelled_session_is_cancelled() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1")])
    # A later payment purges the stale session; the acceptance, sent earlier, arrives after it.
    store.handle([payment("pay-2", at=T0 + minutes(20))])

    result = store.handle([acceptance(session_of("pay-1"), at=T0 + minutes(14))])

    assert rejection_reason(result) == "cancelled"
    assert store.status(session_of("pay-2")) is Status.WAITING


def test_an_acceptance_of_a_waiting_session_past_its_deadline_is_expired_before_any_sweep() -> None:
    session = waiting("pay-1")

    result = decide(acceptance(session.id, at=T0 + minutes(16)), state=snapshot(session))

    assert rejection_reason(result) == "expired"


def test_a_rejected_acceptance_changes_no_session() -> None:
    session = live("pay-1", accepted_at=T0 + minutes(1))

    outcome = decide_acceptance(acceptance(session.id, OTHER_MECHANIC, at=T0 + minutes(2)), session)

    assert outcome.changed == ()
    assert outcome.session_id == session.id
