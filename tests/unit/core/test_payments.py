"""R1 and R3: a payment creates a waiting session or is rejected, exactly once per payment_id."""

from __future__ import annotations

import schemas
from service.core.batch import PaymentRecord
from service.core.outcomes import Kind, Verdict
from service.core.sessions import Status
from tests.unit.core.builders import (
    ALICE,
    BOB,
    MAX_LIVE,
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
    session_of,
    snapshot,
    types,
    waiting,
)


def test_a_first_payment_creates_a_waiting_session_that_expires_after_the_ttl() -> None:
    event = payment("pay-1", session_type="diagnostic")

    result = decide(event)

    created = only(result, schemas.SESSION_CREATED)
    assert created.data == schemas.SessionCreated(
        session_id=session_of("pay-1"),
        customer_id=ALICE,
        payment_id="pay-1",
        session_type="diagnostic",
        created_at=T0,
        expires_at=T0 + TTL,
    )
    assert created.key == str(ALICE)
    assert created.causation_id == event.id
    assert created.time == T0
    (session,) = result.inserted
    assert session.status is Status.WAITING
    assert str(session.created_event_id) == str(created.id)
    assert result.payments == (
        PaymentRecord("pay-1", ALICE, event.id, Kind.CREATED, session_of("pay-1")),
    )
    assert result.decisions[0].outcome == Verdict(Kind.CREATED)


def test_a_payment_while_a_session_is_waiting_is_rejected_naming_the_active_session() -> None:
    active = waiting("pay-1")
    event = payment("pay-2", at=T0 + minutes(5))

    result = decide(event, state=snapshot(active))

    rejected = only(result, schemas.SESSION_REJECTED)
    assert rejected.data == schemas.SessionRejected(
        payment_id="pay-2", customer_id=ALICE, reason="active_session", active_session_id=active.id
    )
    assert rejected.key == str(ALICE)
    assert rejected.causation_id == event.id
    assert result.inserted == () and result.updated == ()
    assert result.payments == (PaymentRecord("pay-2", ALICE, event.id, Kind.REJECTED, active.id),)


def test_a_payment_while_a_session_is_live_is_rejected() -> None:
    active = live("pay-1", accepted_at=T0 + minutes(1))

    result = decide(payment("pay-2", at=T0 + minutes(60)), state=snapshot(active))

    assert types(result) == [schemas.SESSION_REJECTED]


def test_a_payment_after_the_previous_session_completed_creates_a_new_one() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1"), acceptance(session_of("pay-1"), at=T0 + minutes(1))])
    store.handle([ended(session_of("pay-1"), at=T0 + minutes(30))])

    result = store.handle([payment("pay-2", at=T0 + minutes(31))])

    assert types(result) == [schemas.SESSION_CREATED]
    assert store.status(session_of("pay-2")) is Status.WAITING


def test_customers_do_not_block_each_other() -> None:
    result = decide(payment("pay-a", ALICE), payment("pay-b", BOB))

    assert types(result) == [schemas.SESSION_CREATED, schemas.SESSION_CREATED]


def test_a_payment_id_already_decided_is_a_duplicate_with_no_output() -> None:
    result = decide(payment("pay-1", event_id="redelivery"), state=snapshot(decided=["pay-1"]))

    assert result.emitted == ()
    assert result.payments == ()
    assert result.inserted == ()
    assert result.decisions[0].outcome == Verdict(Kind.DUPLICATE_PAYMENT)


def test_the_same_payment_id_twice_in_one_batch_is_decided_once() -> None:
    result = decide(
        payment("pay-1", event_id="first"), payment("pay-1", event_id="second", at=T0 + TICK)
    )

    assert types(result) == [schemas.SESSION_CREATED]
    assert [p.event_id for p in result.payments] == ["first"]
    assert [d.outcome.label for d in result.decisions] == ["created", "duplicate_payment"]


def test_a_rejected_payment_delivered_again_is_not_rejected_twice() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1"), payment("pay-2", at=T0 + minutes(1), event_id="one")])

    result = store.handle([payment("pay-2", at=T0 + minutes(2), event_id="two")])

    assert result.emitted == ()


def test_a_payment_delivered_again_after_its_session_closed_does_not_reopen_it() -> None:
    store = InMemoryHandlers()
    store.handle([payment("pay-1", event_id="one")])
    store.sweep(now=T0 + minutes(20))

    result = store.handle([payment("pay-1", at=T0 + minutes(30), event_id="two")])

    assert result.emitted == ()
    assert store.status(session_of("pay-1")) is Status.CANCELLED


def test_a_stale_waiting_session_is_cancelled_before_the_next_payment() -> None:
    old = waiting("pay-1")

    result = decide(payment("pay-2", at=T0 + minutes(20)), state=snapshot(old))

    assert types(result) == [schemas.SESSION_CANCELLED, schemas.SESSION_CREATED]
    cancelled, created = result.emitted
    assert cancelled.data.subject == str(old.id)
    assert created.data.subject == str(session_of("pay-2"))
    assert result.decisions[0].purged == (old.id,)
    assert [s.status for s in result.updated] == [Status.CANCELLED]
    assert [s.status for s in result.inserted] == [Status.WAITING]


def test_a_payment_at_exactly_the_old_sessions_deadline_creates_a_new_session() -> None:
    old = waiting("pay-1")

    result = decide(payment("pay-2", at=old.expires_at), state=snapshot(old))

    assert types(result) == [schemas.SESSION_CANCELLED, schemas.SESSION_CREATED]


def test_a_live_session_past_max_live_is_timed_out_before_the_next_payment() -> None:
    old = live("pay-1", accepted_at=T0 + minutes(2))

    result = decide(payment("pay-2", at=T0 + minutes(2) + MAX_LIVE), state=snapshot(old))

    assert types(result) == [schemas.SESSION_COMPLETED, schemas.SESSION_CREATED]
    completed = result.emitted[0].data
    assert isinstance(completed, schemas.SessionCompleted)
    assert completed.reason == "timed_out"


def test_a_payment_dated_before_the_waiting_session_was_created_is_still_rejected() -> None:
    active = waiting("pay-1", at=T0)

    result = decide(payment("pay-2", at=T0 - minutes(3)), state=snapshot(active))

    assert types(result) == [schemas.SESSION_REJECTED]


def test_a_burst_of_payments_of_one_customer_never_leaves_two_active_sessions() -> None:
    store = InMemoryHandlers()
    times = [0, 1, 14, 15, 16, 16, 31, 29, 50, 200]
    for n, offset in enumerate(times):
        store.handle([payment(f"pay-{n}", at=T0 + minutes(offset))])
        store.check_one_active_per_customer()

    outcomes = [store.payments[f"pay-{n}"].outcome for n in range(len(times))]
    assert outcomes == [
        "created",
        "rejected",
        "rejected",
        "created",
        "rejected",
        "rejected",
        "created",
        "rejected",
        "created",
        "created",
    ]


def test_payments_from_two_sources_sharing_an_event_id_get_distinct_rejections() -> None:
    result = decide(
        payment("pay-1"),
        payment("pay-2", at=T0 + minutes(1), event_id="1", source="payments-eu"),
        payment("pay-3", at=T0 + minutes(2), event_id="1", source="payments-us"),
    )

    rejections = [e.id for e in result.emitted if e.type == schemas.SESSION_REJECTED]
    assert len(rejections) == 2
    assert len(set(rejections)) == 2
