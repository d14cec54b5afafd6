"""R13: a batch is a fold in arrival order, and the same input always decides the same output."""

from __future__ import annotations

import schemas
from schemas.ids import output_event_id_text
from service.core.outcomes import Kind, Reason, Verdict
from service.core.sessions import Status
from tests.unit.core.builders import (
    ALICE,
    BOB,
    CAROL,
    OTHER_MECHANIC,
    T0,
    InMemoryHandlers,
    acceptance,
    decide,
    ended,
    minutes,
    payment,
    row,
    session_of,
    snapshot,
    types,
    waiting,
)


def a_busy_day() -> list[schemas.InputEvent]:
    return [
        payment("pay-a1", ALICE),
        payment("pay-b1", BOB, at=T0 + minutes(1)),
        payment("pay-a2", ALICE, at=T0 + minutes(2)),
        acceptance(session_of("pay-a1"), at=T0 + minutes(3)),
        acceptance(session_of("pay-a1"), OTHER_MECHANIC, at=T0 + minutes(4)),
        payment("pay-c1", CAROL, at=T0 + minutes(5)),
        payment("pay-b1", BOB, at=T0 + minutes(6), event_id="pay-b1 again"),
        ended(session_of("pay-a1"), at=T0 + minutes(20)),
        payment("pay-b2", BOB, at=T0 + minutes(21)),
        acceptance(session_of("pay-c1"), at=T0 + minutes(22)),
        payment("pay-a3", ALICE, at=T0 + minutes(23)),
        acceptance(session_of("pay-b2"), at=T0 + minutes(24)),
        ended(session_of("pay-c1"), at=T0 + minutes(25)),
    ]


def test_the_same_batch_decided_twice_gives_identical_results() -> None:
    first = decide(*a_busy_day())
    second = decide(*a_busy_day())

    assert first == second
    assert [row(e) for e in first.emitted] == [row(e) for e in second.emitted]


def test_a_busy_day_decides_what_the_rules_say() -> None:
    result = decide(*a_busy_day())

    assert types(result) == [
        schemas.SESSION_CREATED,  # a1
        schemas.SESSION_CREATED,  # b1
        schemas.SESSION_REJECTED,  # a2: a1 waiting
        schemas.SESSION_ACCEPTED,  # a1
        schemas.SESSION_ACCEPTANCE_REJECTED,  # a1 again: already_accepted
        schemas.SESSION_CREATED,  # c1
        schemas.SESSION_COMPLETED,  # a1 ended
        schemas.SESSION_CANCELLED,  # b1 expired at +16, purged by b2
        schemas.SESSION_CREATED,  # b2
        schemas.SESSION_CANCELLED,  # c1 expired at +20, purged by its acceptance
        schemas.SESSION_ACCEPTANCE_REJECTED,  # c1: expired
        schemas.SESSION_CREATED,  # a3
        schemas.SESSION_ACCEPTED,  # b2
    ]
    assert result.decisions[6].outcome == Verdict(Kind.DUPLICATE_PAYMENT)
    assert result.decisions[-1].outcome == Verdict(Kind.IGNORED, Reason.CANCELLED)


def test_output_ids_derive_from_the_causing_events_identity_type_and_subject_only() -> None:
    # The contract's example payment, from source "payments": pinned, so a change shows.
    result = decide(payment("pi_3QxY2b3c4d5e", event_id="evt_1QxY2b3c4d"))

    (created,) = result.emitted
    assert created.id == output_event_id_text(
        "payments\x1fevt_1QxY2b3c4d", schemas.SESSION_CREATED, str(created.data.subject)
    )
    assert str(created.id) == "2dc3b55b-18af-5245-be8b-63af92c502c9"


def test_timer_events_derive_their_id_from_the_event_that_started_the_timer() -> None:
    for emitted in decide(*a_busy_day()).emitted:
        if emitted.type != schemas.SESSION_CANCELLED:
            continue
        event = schemas.output_event(
            emitted.data, causation_id=emitted.causation_id, time=emitted.time
        )
        assert event.id == str(emitted.id)


def test_outbox_rows_are_keyed_by_the_customer_and_decode_back_to_the_decision() -> None:
    (created,) = decide(payment("pay-1")).emitted

    event_id, key, value = row(created)

    assert event_id == str(created.id)
    assert key == str(ALICE).encode()
    decoded = schemas.decode_output(value)
    assert decoded.id == str(created.id)
    assert decoded.causationid == created.causation_id
    assert decoded.data == created.data


def test_a_batch_split_in_two_with_the_state_carried_over_equals_one_batch() -> None:
    events = a_busy_day()
    whole, split = InMemoryHandlers(), InMemoryHandlers()

    whole.handle(events)
    split.handle(events[:7])
    split.handle(events[7:])

    assert split.published == whole.published
    assert split.sessions == whole.sessions
    assert split.payments == whole.payments


def test_a_batch_split_at_every_event_equals_one_batch() -> None:
    events = a_busy_day()
    whole, split = InMemoryHandlers(), InMemoryHandlers()

    whole.handle(events)
    for event in events:
        split.handle([event])

    assert split.published == whole.published
    assert split.sessions == whole.sessions


def test_each_event_sees_the_state_the_previous_one_left() -> None:
    result = decide(
        payment("pay-1"),
        acceptance(session_of("pay-1"), at=T0 + minutes(1)),
        ended(session_of("pay-1"), at=T0 + minutes(2)),
        payment("pay-2", at=T0 + minutes(3)),
    )

    assert [d.outcome.label for d in result.decisions] == [
        "created",
        "accepted",
        "completed",
        "created",
    ]


def test_a_session_born_and_closed_in_one_batch_is_inserted_once_in_its_final_version() -> None:
    result = decide(
        payment("pay-1"),
        acceptance(session_of("pay-1"), at=T0 + minutes(1)),
        ended(session_of("pay-1"), at=T0 + minutes(2)),
    )

    (session,) = result.inserted
    assert session.status is Status.COMPLETED
    assert result.updated == ()


def test_a_session_from_the_snapshot_is_updated_not_inserted() -> None:
    session = waiting("pay-1")
    state = snapshot(session)

    result = decide(acceptance(session.id, at=T0 + minutes(1)), state=state)

    assert result.inserted == ()
    assert [s.id for s in result.updated] == [session.id]
    assert state.sessions[session.id] == session, "the snapshot itself is left as it was"


def test_there_is_one_decision_per_event_in_arrival_order() -> None:
    events = a_busy_day()

    result = decide(*events)

    assert [d.event_id for d in result.decisions] == [e.id for e in events]
    assert [d.event_type for d in result.decisions] == [e.type for e in events]


def test_redelivered_events_are_dropped_by_the_store_before_the_core_sees_them() -> None:
    store = InMemoryHandlers()
    events = a_busy_day()
    store.handle(events)

    again = store.handle(events)

    assert again.emitted == () and again.decisions == ()
