"""Output events: built with derived subject and id, encoded to deterministic bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from pydantic import ValidationError

import schemas
from schemas.dlq import dlq_headers

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CUSTOMER = UUID("6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41")
MECHANIC = UUID("0b0e7bb1-4b1f-4c5c-9d5e-2f3a4b5c6d7e")
SESSION = schemas.session_id_for_payment("pi_3QxY2b3c4d5e")
OTHER_SESSION = UUID("9d2f8c4b-1a3e-4f5d-8b7c-6e5d4c3b2a10")

CREATED = schemas.SessionCreated(
    session_id=SESSION,
    customer_id=CUSTOMER,
    payment_id="pi_3QxY2b3c4d5e",
    session_type="video",
    created_at=AT,
    expires_at=AT + timedelta(minutes=15),
)
REJECTED = schemas.SessionRejected(
    payment_id="pi_3QxY2b3c4d5e", customer_id=CUSTOMER, active_session_id=OTHER_SESSION
)
ACCEPTED = schemas.SessionAccepted(
    session_id=SESSION, customer_id=CUSTOMER, mechanic_id=MECHANIC, accepted_at=AT
)
ONE_OF_EACH: list[schemas.OutputEventData] = [
    CREATED,
    REJECTED,
    schemas.SessionCancelled(
        session_id=SESSION, customer_id=CUSTOMER, payment_id="pi_3QxY2b3c4d5e", cancelled_at=AT
    ),
    ACCEPTED,
    schemas.SessionAcceptanceRejected(
        session_id=SESSION, mechanic_id=MECHANIC, reason="already_accepted"
    ),
    schemas.SessionCompleted(
        session_id=SESSION, customer_id=CUSTOMER, reason="timed_out", completed_at=AT
    ),
]


def test_a_session_created_event_encodes_to_exactly_these_bytes() -> None:
    event = schemas.SessionCreatedEvent.build(
        CREATED, causation_id="evt_1QxY2b3c4d", time=AT, causation_source="payments"
    )

    assert schemas.encode(event) == (
        b'{"specversion":"1.0","id":"5a52796e-f2e4-589a-aff5-5ab81aa805e0",'
        b'"source":"session-fulfillment","type":"session.created",'
        b'"subject":"c3a7967d-00d4-57d9-8266-5c972e244302","time":"2026-11-24T09:30:00Z",'
        b'"datacontenttype":"application/json","causationid":"evt_1QxY2b3c4d",'
        b'"causationsource":"payments","data":{"session_id":"c3a7967d-00d4-57d9-8266-5c972e244302",'
        b'"customer_id":"6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41","payment_id":"pi_3QxY2b3c4d5e",'
        b'"session_type":"video","created_at":"2026-11-24T09:30:00Z",'
        b'"expires_at":"2026-11-24T09:45:00Z"}}'
    )


@pytest.mark.parametrize("data", ONE_OF_EACH, ids=lambda data: type(data).__name__)
def test_every_output_event_round_trips_through_its_bytes(data: schemas.OutputEventData) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=AT)

    decoded = schemas.decode_output(schemas.encode(event))

    assert decoded == event
    assert type(decoded) is type(event)
    assert schemas.encode(decoded) == schemas.encode(event)


@pytest.mark.parametrize("data", ONE_OF_EACH, ids=lambda data: type(data).__name__)
def test_every_output_event_carries_the_fixed_attributes(data: schemas.OutputEventData) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=AT)

    assert event.source == "session-fulfillment"
    assert event.datacontenttype == "application/json"
    assert event.specversion == "1.0"
    assert event.causationid == "evt_1"
    assert event.type == schemas.OUTPUT_EVENT_CLASSES[event.type].event_type


@pytest.mark.parametrize(
    "data", [d for d in ONE_OF_EACH if not isinstance(d, schemas.SessionRejected)],
    ids=lambda data: type(data).__name__,
)  # fmt: skip
def test_the_subject_is_the_session_and_the_id_derives_from_it(
    data: schemas.OutputEventData,
) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=AT)

    assert event.subject == str(SESSION)
    assert event.id == str(schemas.output_event_id("evt_1", event.type, str(SESSION)))


def test_a_rejection_has_no_subject_on_the_wire_and_its_id_derives_from_the_customer() -> None:
    event = schemas.SessionRejectedEvent.build(REJECTED, causation_id="evt_1", time=AT)

    assert event.subject is None
    assert b'"subject"' not in schemas.encode(event)
    assert event.id == str(
        schemas.output_event_id("evt_1", schemas.SESSION_REJECTED, str(CUSTOMER))
    )


def test_an_explicit_id_is_kept() -> None:
    chosen = UUID("11111111-2222-5333-8444-555555555555")

    event = schemas.output_event(CREATED, causation_id="evt_1", time=AT, id=chosen)

    assert event.id == str(chosen)


def test_times_are_written_in_utc_with_z_whatever_offset_they_were_given_in() -> None:
    plus_two = timezone(timedelta(hours=2))
    in_utc = CREATED
    in_local = schemas.SessionCreated(
        **in_utc.model_dump(exclude={"created_at", "expires_at"}),
        created_at=in_utc.created_at.astimezone(plus_two),
        expires_at=in_utc.expires_at.astimezone(plus_two),
    )

    from_utc = schemas.SessionCreatedEvent.build(in_utc, causation_id="e", time=AT)
    from_local = schemas.SessionCreatedEvent.build(
        in_local, causation_id="e", time=AT.astimezone(plus_two)
    )

    assert schemas.encode(from_local) == schemas.encode(from_utc)
    assert b'"created_at":"2026-11-24T09:30:00Z"' in schemas.encode(from_local)
    assert b"+02:00" not in schemas.encode(from_local)


def test_a_fraction_of_a_second_is_written_with_six_digits() -> None:
    at = AT.replace(microsecond=250_000)

    event = schemas.output_event(ACCEPTED, causation_id="evt_1", time=at)

    assert b'"time":"2026-11-24T09:30:00.250000Z"' in schemas.encode(event)
    assert schemas.rfc3339_utc(at) == "2026-11-24T09:30:00.250000Z"
    assert schemas.rfc3339_utc(AT) == "2026-11-24T09:30:00Z"


def test_a_naive_time_is_refused_when_an_output_event_is_built() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        schemas.output_event(ACCEPTED, causation_id="evt_1", time=datetime(2026, 11, 24))
    with pytest.raises(ValidationError, match="timezone"):
        schemas.SessionAccepted(
            session_id=SESSION,
            customer_id=CUSTOMER,
            mechanic_id=MECHANIC,
            accepted_at=datetime(2026, 11, 24),
        )


def test_output_data_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        schemas.SessionCompleted.model_validate(
            {
                "session_id": SESSION,
                "customer_id": CUSTOMER,
                "reason": "ended",
                "completed_at": AT,
                "note": "x",
            }
        )


def test_an_output_envelope_refuses_unknown_attributes() -> None:
    event = schemas.output_event(CREATED, causation_id="evt_1", time=AT)
    attributes = event.model_dump() | {"traceparent": "00-abc"}

    with pytest.raises(ValidationError, match="traceparent"):
        schemas.SessionCreatedEvent.model_validate(attributes)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        schemas.decode_output(schemas.encode(event).replace(b'{"spec', b'{"x":1,"spec', 1))


def test_an_output_envelope_refuses_a_foreign_source_or_an_empty_causation() -> None:
    event = schemas.output_event(CREATED, causation_id="evt_1", time=AT)

    with pytest.raises(ValidationError, match="source"):
        schemas.SessionCreatedEvent.model_validate(event.model_dump() | {"source": "payments"})
    with pytest.raises(ValidationError, match="causationid"):
        schemas.output_event(CREATED, causation_id="", time=AT)


def test_an_output_reason_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValidationError, match="reason"):
        schemas.SessionAcceptanceRejected(session_id=SESSION, mechanic_id=MECHANIC, reason="late")


def test_input_events_round_trip_through_their_json() -> None:
    decoder = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())
    inputs: list[tuple[str, schemas.InputEvent]] = [
        (
            "payments.completed",
            schemas.PaymentCompletedEvent(
                specversion="1.0",
                id="evt_1",
                source="payments",
                type="payment.completed",
                time=AT,
                data=schemas.PaymentCompleted(
                    payment_id="pi_1",
                    customer_id=CUSTOMER,
                    amount_cents=1,
                    currency="EUR",
                    session_type="chat",
                ),
            ),
        ),
        (
            "mechanics.accepted",
            schemas.MechanicAcceptedEvent(
                specversion="1.0",
                id="evt_2",
                source="mechanic-app",
                type="mechanic.accepted",
                time=AT,
                subject=str(SESSION),
                data=schemas.MechanicAccepted(session_id=SESSION, mechanic_id=MECHANIC),
            ),
        ),
        (
            "sessions.ended",
            schemas.SessionEndedEvent(
                specversion="1.0",
                id="evt_3",
                source="runtime",
                type="session.ended",
                time=AT,
                data=schemas.SessionEnded(session_id=SESSION),
            ),
        ),
    ]

    for topic, event in inputs:
        assert decoder.decode(event.model_dump_json().encode(), topic) == event


def test_the_dlq_headers_say_why_and_where_a_message_failed() -> None:
    error = schemas.DecodeError(schemas.DecodeErrorKind.NOT_JSON, "not JSON: expected value")

    headers = dlq_headers(error, topic="payments.completed", partition=3, offset=1024, failed_at=AT)

    assert headers == [
        ("fulfillment-error-reason", b"not JSON: expected value"),
        ("fulfillment-error-kind", b"not_json"),
        ("fulfillment-source-topic", b"payments.completed"),
        ("fulfillment-source-partition", b"3"),
        ("fulfillment-source-offset", b"1024"),
        ("fulfillment-failed-at", b"2026-11-24T09:30:00Z"),
        ("fulfillment-original-origin", b"payments.completed:3:1024"),
    ]
    assert [name for name, _ in headers] == list(schemas.DLQ_HEADERS)
