"""Properties over generated events: valid input decodes, output encodes deterministically."""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas.output_fields import RECORD_OF, CompletedFields, encode_fields, fields_of, to_model

DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())

# RFC 3339 offsets are whole minutes; zoneinfo's historical offsets with seconds are not.
offsets = st.integers(min_value=-18 * 60, max_value=18 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
)
# Any text but NUL, which PostgreSQL cannot store (refused by its own test, test_schema_decoding).
stored_text = st.characters(codec="utf-8", exclude_characters="\x00")
payment_ids = st.text(stored_text, min_size=1, max_size=255)
# Identifiers (id, source) take no control character: the dedupe identity joins them with one.
id_text = st.characters(codec="utf-8", exclude_categories=["Cc"])
ids = st.text(id_text, min_size=1, max_size=64)
currencies = st.from_regex(r"\A[A-Z]{3}\Z")
extra_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
extras = st.dictionaries(
    st.text(min_size=1, max_size=10).map(lambda key: "x-" + key), extra_values, max_size=3
)


def envelope(event_type: str, event_id: str, time: datetime, data: dict[str, Any]) -> bytes:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "producer",
        "type": event_type,
        "time": time.isoformat(),
        "data": data,
    }
    return json.dumps(event, ensure_ascii=False).encode()


@given(
    event_id=ids,
    time=aware_times,
    payment_id=payment_ids,
    customer_id=st.uuids(),
    amount=st.integers(min_value=1, max_value=10**15),
    currency=currencies,
    session_type=st.sampled_from(schemas.SessionType),
    unknown=extras,
)
def test_a_valid_payment_completed_always_decodes_to_the_same_values(
    event_id: str,
    time: datetime,
    payment_id: str,
    customer_id: UUID,
    amount: int,
    currency: str,
    session_type: schemas.SessionType,
    unknown: dict[str, Any],
) -> None:
    data = {
        "payment_id": payment_id,
        "customer_id": str(customer_id),
        "amount_cents": amount,
        "currency": currency,
        "session_type": session_type.value,
        **unknown,
    }

    event = DECODER.decode(
        envelope("payment.completed", event_id, time, data), "payments.completed"
    )

    assert isinstance(event, schemas.PaymentCompletedEvent)
    assert event.id == event_id
    assert event.time == time
    assert event.time.utcoffset() == time.utcoffset()
    assert event.data.payment_id == payment_id
    assert event.data.customer_id == customer_id
    assert event.data.amount_cents == amount
    assert event.data.currency == currency
    assert event.data.session_type is session_type


@given(event_id=ids, time=aware_times, session_id=st.uuids(), mechanic_id=st.uuids())
def test_a_valid_mechanic_accepted_always_decodes_to_the_same_values(
    event_id: str, time: datetime, session_id: UUID, mechanic_id: UUID
) -> None:
    data = {"session_id": str(session_id), "mechanic_id": str(mechanic_id)}

    event = DECODER.decode(
        envelope("mechanic.accepted", event_id, time, data), "mechanics.accepted"
    )

    assert isinstance(event, schemas.MechanicAcceptedEvent)
    assert (event.id, event.time) == (event_id, time)
    assert (event.data.session_id, event.data.mechanic_id) == (session_id, mechanic_id)


@given(amount=st.integers(max_value=0))
def test_an_amount_that_is_not_positive_is_always_refused(amount: int) -> None:
    data = {
        "payment_id": "pi_1",
        "customer_id": "6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41",
        "amount_cents": amount,
        "currency": "USD",
        "session_type": "chat",
    }
    value = envelope("payment.completed", "evt_1", datetime(2026, 1, 1, tzinfo=UTC), data)

    try:
        DECODER.decode(value, "payments.completed")
    except schemas.DecodeError as error:
        assert error.kind is schemas.DecodeErrorKind.INVALID
        assert "data.amount_cents" in error.reason
    else:
        raise AssertionError("a non-positive amount was accepted")


@st.composite
def output_data(draw: st.DrawFn) -> schemas.OutputEventData:
    uuids = st.uuids()
    kind = draw(st.sampled_from(schemas.OUTPUT_TYPES))
    session_id, customer_id, other = draw(uuids), draw(uuids), draw(uuids)
    at = draw(aware_times)
    match kind:
        case schemas.SESSION_CREATED:
            return schemas.SessionCreated(
                session_id=session_id,
                customer_id=customer_id,
                payment_id=draw(payment_ids),
                session_type=draw(st.sampled_from(schemas.SessionType)),
                created_at=at,
                expires_at=at + timedelta(seconds=draw(st.integers(1, 86_400))),
            )
        case schemas.SESSION_REJECTED:
            return schemas.SessionRejected(
                payment_id=draw(payment_ids), customer_id=customer_id, active_session_id=other
            )
        case schemas.SESSION_CANCELLED:
            return schemas.SessionCancelled(
                session_id=session_id,
                customer_id=customer_id,
                payment_id=draw(payment_ids),
                cancelled_at=at,
            )
        case schemas.SESSION_ACCEPTED:
            return schemas.SessionAccepted(
                session_id=session_id, customer_id=customer_id, mechanic_id=other, accepted_at=at
            )
        case schemas.SESSION_ACCEPTANCE_REJECTED:
            return schemas.SessionAcceptanceRejected(
                session_id=session_id,
                mechanic_id=other,
                reason=draw(st.sampled_from(schemas.AcceptanceRejectionReason)),
            )
        case _:
            return schemas.SessionCompleted(
                session_id=session_id,
                customer_id=customer_id,
                reason=draw(st.sampled_from(schemas.CompletionReason)),
                completed_at=at,
            )


@given(data=output_data(), causation_id=ids, time=aware_times)
def test_an_output_event_built_twice_has_the_same_id_and_the_same_bytes(
    data: schemas.OutputEventData, causation_id: str, time: datetime
) -> None:
    first = schemas.output_event(data, causation_id=causation_id, time=time)
    # As after a redelivery: rebuilt from equal values, in another offset.
    again = schemas.output_event(
        type(data).model_validate_json(data.model_dump_json()),
        causation_id=causation_id,
        time=time.astimezone(timezone(timedelta(hours=-7))),
    )

    assert again.id == first.id
    assert schemas.encode(again) == schemas.encode(first)
    assert UUID(first.id).version == 5


@given(data=output_data(), causation_id=ids, time=aware_times)
def test_an_output_event_decodes_back_to_itself(
    data: schemas.OutputEventData, causation_id: str, time: datetime
) -> None:
    event = schemas.output_event(data, causation_id=causation_id, time=time)
    encoded = schemas.encode(event)

    assert schemas.decode_output(encoded) == event
    compact = json.dumps(json.loads(encoded), separators=(",", ":"), ensure_ascii=False)
    assert encoded == compact.encode()
    assert event.time.tzinfo is UTC
    assert json.loads(encoded)["time"].endswith("Z")


# What JSON escapes, or might be tempted to, drawn far more often than plain text draws it.
json_tricky_ids = st.text(
    st.one_of(st.sampled_from('"\\/\n\t\x01\x1f\x7f\u2028\u00e9\U0001f600'), stored_text),
    min_size=1,
    max_size=64,
)


@given(
    data=output_data(),
    causation_id=json_tricky_ids,
    time=aware_times,
    derived=st.booleans(),
    id=json_tricky_ids,
)
def test_the_fast_encoder_writes_the_models_bytes_for_every_output_type(
    data: schemas.OutputEventData, causation_id: str, time: datetime, derived: bool, id: str
) -> None:
    event = schemas.output_event(
        data, causation_id=causation_id, time=time, id=None if derived else id
    )
    # As the decisions make it: times in whatever offset they were computed in.
    record = fields_of(data)
    east = timezone(timedelta(hours=5, minutes=30))
    record = replace(
        record,
        **{
            f.name: getattr(record, f.name).astimezone(east)
            for f in dataclass_fields(record)
            if isinstance(getattr(record, f.name), datetime)
        },
    )

    fast = encode_fields(
        record, id=event.id, time=time, causation_id=causation_id, subject=event.subject
    )

    assert fast == schemas.encode(event)
    assert to_model(record) == data


class _DatabaseUUID(UUID):
    """Like the UUID type a database driver returns (asyncpg's is a subclass too)."""


def test_the_fast_encoder_writes_a_uuid_subclass_as_the_model_does() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = CompletedFields(
        session_id=_DatabaseUUID(int=1),
        customer_id=_DatabaseUUID(int=2),
        reason="ended",
        completed_at=at,
    )
    event = schemas.output_event(to_model(record), causation_id="c", time=at)

    fast = encode_fields(record, id=event.id, time=at, causation_id="c", subject=event.subject)

    assert fast == schemas.encode(event)


def test_the_fast_encoder_refuses_a_naive_time() -> None:
    record = CompletedFields(
        session_id=UUID(int=1),
        customer_id=UUID(int=2),
        reason="ended",
        completed_at=datetime(2026, 1, 1),
    )

    with pytest.raises(ValueError, match="naive datetime"):
        encode_fields(record, id="x", time=datetime.now(UTC), causation_id="c", subject=None)


def test_every_output_model_has_a_record_with_its_fields() -> None:
    # Their order may differ (a dataclass puts defaults last): the encoder follows the model's.
    assert len(RECORD_OF) == len(schemas.OUTPUT_EVENT_CLASSES)
    for model, record in RECORD_OF.items():
        assert {f.name for f in dataclass_fields(record)} == set(model.model_fields)
