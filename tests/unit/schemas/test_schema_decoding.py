"""Decoder: what it accepts, what it refuses, and how precisely it says why."""

from __future__ import annotations

import json
from typing import Any

import pytest

import schemas
from schemas import DecodeErrorKind as Kind
from tests.unit.schemas.examples import example

TOPIC = "payments.completed"
DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())

DELETE = object()


def payment(**changes: Any) -> bytes:
    """The contract example with attributes changed; `data_x=` changes data field x."""
    event = example()
    for name, value in changes.items():
        target, key = (event["data"], name[5:]) if name.startswith("data_") else (event, name)
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return json.dumps(event).encode()


DEEP = b'{"specversion":"1.0","deep":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
TWO_MEGABYTES = payment(padding="x" * 2 * 1024 * 1024)

MALFORMED = [
    pytest.param(
        payment(id=DELETE), Kind.NOT_CLOUDEVENT, "missing required attribute 'id'", id="missing id"
    ),
    pytest.param(
        payment(id=""), Kind.NOT_CLOUDEVENT, "'id' must be a non-empty string", id="empty id"
    ),
    pytest.param(
        payment(source=DELETE),
        Kind.NOT_CLOUDEVENT,
        "missing required attribute 'source'",
        id="missing source",
    ),
    pytest.param(
        payment(type=DELETE),
        Kind.NOT_CLOUDEVENT,
        "missing required attribute 'type'",
        id="missing type",
    ),
    pytest.param(
        payment(specversion=DELETE),
        Kind.NOT_CLOUDEVENT,
        "missing required attribute 'specversion'",
        id="missing specversion",
    ),
    pytest.param(
        payment(specversion="0.3"), Kind.NOT_CLOUDEVENT, "specversion '0.3'", id="specversion 0.3"
    ),
    pytest.param(
        payment(id="evt\u00001"),
        Kind.INVALID,
        "id: String should have no control characters, has U+0000 at index 3, got 'evt\\x001'",
        id="NUL in id",
    ),
    pytest.param(
        payment(source="s" * 5000),
        Kind.INVALID,
        "source: String should have at most 1024 bytes in UTF-8, not 5000, got 'sss",
        id="5,000-character source",
    ),
    pytest.param(
        payment(data_payment_id="pi\u0000"),
        Kind.INVALID,
        "data.payment_id: must not contain NUL (U+0000), got 'pi\\x00'",
        id="NUL in payment_id",
    ),
    pytest.param(
        payment(time="9999-12-31T23:59:00Z"),
        Kind.INVALID,
        "time: Input should be less than 9000-01-01T00:00:00Z, got '9999-12-31T23:59:00Z'",
        id="time a deadline cannot follow",
    ),
    pytest.param(payment(time=DELETE), Kind.INVALID, "time: Field required", id="missing time"),
    pytest.param(payment(data=DELETE), Kind.INVALID, "data: Field required", id="missing data"),
    pytest.param(
        payment(time="2026-11-24T09:30:00"),
        Kind.INVALID,
        "time: Input should have timezone",
        id="naive time",
    ),
    pytest.param(
        payment(time=1795000000),
        Kind.INVALID,
        "time: Input should be a valid datetime",
        id="time as epoch seconds",
    ),
    pytest.param(
        payment(data_customer_id="6f1c8a5e-nope"),
        Kind.INVALID,
        "data.customer_id: Input should be a valid UUID",
        id="bad customer UUID",
    ),
    pytest.param(
        payment(data_amount_cents=0),
        Kind.INVALID,
        "data.amount_cents: Input should be greater than 0",
        id="amount 0",
    ),
    pytest.param(
        payment(data_amount_cents=-5),
        Kind.INVALID,
        "data.amount_cents: Input should be greater than 0",
        id="amount -5",
    ),
    pytest.param(
        payment(data_amount_cents="2999"),
        Kind.INVALID,
        "data.amount_cents: Input should be a valid integer",
        id="amount as string",
    ),
    pytest.param(
        payment(data_amount_cents=2999.0),
        Kind.INVALID,
        "data.amount_cents: Input should be a valid integer",
        id="amount as float",
    ),
    pytest.param(
        payment(data_currency="usd"),
        Kind.INVALID,
        "data.currency: String should match pattern",
        id="lower-case currency",
    ),
    pytest.param(
        payment(data_session_type="audio"),
        Kind.INVALID,
        "data.session_type: Input should be 'chat', 'video' or 'diagnostic'",
        id="unknown session_type",
    ),
    pytest.param(
        payment(data_payment_id=""),
        Kind.INVALID,
        "data.payment_id: String should have at least 1 character",
        id="empty payment_id",
    ),
    pytest.param(
        payment(data_payment_id="p" * 256),
        Kind.INVALID,
        "data.payment_id: String should have at most 255 characters",
        id="payment_id of 256 chars",
    ),
    pytest.param(
        payment(data=[1, 2]),
        Kind.INVALID,
        "data: Input should be a JSON object",
        id="data is a list",
    ),
    pytest.param(
        payment(data="pi_3QxY2b3c4d5e"),
        Kind.INVALID,
        "data: Input should be a JSON object",
        id="data is a string",
    ),
    pytest.param(
        b"[1, 2]",
        Kind.NOT_CLOUDEVENT,
        "the JSON value is an array, not an object",
        id="event is a list",
    ),
    pytest.param(
        b'{"id": "\xff"}',
        Kind.NOT_UTF8,
        "not UTF-8: invalid start byte at offset 8",
        id="invalid UTF-8",
    ),
    pytest.param(
        b"payment completed!",
        Kind.NOT_JSON,
        "not JSON: expected value at line 1 column 1",
        id="not JSON at all",
    ),
    pytest.param(b"", Kind.NOT_JSON, "not JSON: the message is empty", id="empty message"),
    pytest.param(payment()[:-2], Kind.NOT_JSON, "not JSON: EOF while parsing", id="truncated JSON"),
    pytest.param(
        TWO_MEGABYTES,
        Kind.TOO_LARGE,
        f"too large: {len(TWO_MEGABYTES)} bytes, the limit is 1048576",
        id="2 MB payload",
    ),
    pytest.param(
        DEEP, Kind.NOT_JSON, "not JSON: nested too deeply to parse", id="JSON nested 10,000 deep"
    ),
    pytest.param(
        payment(type="foo.bar"), Kind.UNKNOWN_TYPE, "unknown type 'foo.bar'", id="unknown type"
    ),
    pytest.param(
        payment(type="session.created"),
        Kind.UNKNOWN_TYPE,
        "unknown type 'session.created'",
        id="an output type",
    ),
    pytest.param(
        payment(type="session.ended"),
        Kind.WRONG_TOPIC,
        "type 'session.ended' is not expected on topic 'payments.completed'",
        id="wrong topic",
    ),
]


@pytest.mark.parametrize(("value", "kind", "says"), MALFORMED)
def test_a_malformed_message_is_refused_saying_precisely_what_is_wrong(
    value: bytes, kind: schemas.DecodeErrorKind, says: str
) -> None:
    with pytest.raises(schemas.DecodeError) as refused:
        DECODER.decode(value, TOPIC)

    assert refused.value.kind is kind
    assert says in refused.value.reason
    assert str(refused.value) == refused.value.reason
    assert "\n" not in refused.value.reason


def test_every_field_error_is_reported_in_one_line() -> None:
    value = payment(time="yesterday", data_amount_cents=0, data_customer_id=DELETE)

    with pytest.raises(schemas.DecodeError) as refused:
        DECODER.decode(value, TOPIC)

    assert refused.value.kind is Kind.INVALID
    assert refused.value.reason == (
        "invalid payment.completed: time: Input should be a valid datetime, input is too short, "
        "got 'yesterday'; data.customer_id: Field required; "
        "data.amount_cents: Input should be greater than 0, got 0"
    )


def test_the_reason_stays_short_when_the_producer_sends_a_huge_type() -> None:
    with pytest.raises(schemas.DecodeError) as refused:
        DECODER.decode(payment(type="x" * 100_000), TOPIC)

    assert refused.value.kind is Kind.UNKNOWN_TYPE
    assert len(refused.value.reason) < 120


def test_unknown_attributes_and_data_fields_are_ignored() -> None:
    value = payment(traceparent="00-abc-def-01", partitionkey="k", data_coupon="SPRING", data_x=[1])

    event = DECODER.decode(value, TOPIC)

    assert event == DECODER.decode(payment(), TOPIC)
    assert not hasattr(event, "traceparent")
    assert not hasattr(event.data, "coupon")


def test_optional_attributes_are_read_when_present() -> None:
    event = DECODER.decode(payment(subject="s-1", dataschema="https://example.com/s"), TOPIC)

    assert event.subject == "s-1"
    assert event.dataschema == "https://example.com/s"


def test_a_time_with_an_offset_keeps_its_instant() -> None:
    event = DECODER.decode(payment(time="2026-11-24T10:30:00+01:00"), TOPIC)

    assert event.time == DECODER.decode(payment(), TOPIC).time
    assert event.time.utcoffset() is not None
