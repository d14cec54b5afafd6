"""Binary content mode (CloudEvents Kafka protocol binding), checked against the official SDK.

The SDK builds both modes of the same event; the decoder must read them to the same model. The
SDK parses what `encode_binary` and `encode` write back to the same attributes and data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas import DecodeErrorKind as Kind
from schemas.content_modes import binary_from_structured
from tests.unit.schemas.examples import example
from tests.unit.schemas.test_schema_properties import output_data

DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())
FORMAT = JSONFormat()
TOPIC = "payments.completed"
SESSION = "0b9a3c4e-7d1f-4e2a-9c8b-5f6e7d8c9b0a"
MECHANIC = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"

Headers = list[tuple[str, bytes | None]]


def sdk_event(event_type: str, data: dict[str, Any], **attributes: Any) -> SdkEvent:
    base: dict[str, Any] = {
        "id": "evt_1QxY2b3c4d",
        "source": "payments",
        "type": event_type,
        "time": datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        "datacontenttype": "application/json",
    }
    return SdkEvent(attributes={**base, **attributes}, data=data)


def sdk_payment(**attributes: Any) -> SdkEvent:
    return sdk_event("payment.completed", example()["data"], **attributes)


def binary(event: SdkEvent) -> tuple[bytes, Headers]:
    message = kafka.to_binary(event, FORMAT)
    return message.value, list(message.headers.items())


def structured(event: SdkEvent) -> tuple[bytes, Headers]:
    message = kafka.to_structured(event, FORMAT)
    return message.value, list(message.headers.items())


def contract_binary(**changes: bytes | None) -> tuple[bytes, Headers]:
    """The contract example in binary mode with headers changed (None: removed)."""
    value, headers = binary(sdk_payment())
    present = dict(headers)
    for name, header_value in changes.items():
        present.pop(name, None)
        if header_value is not None:
            present[name] = header_value
    return value, list(present.items())


def refusal(value: bytes, headers: Headers, topic: str = TOPIC) -> schemas.DecodeError:
    with pytest.raises(schemas.DecodeError) as refused:
        DECODER.decode(value, topic, headers)
    return refused.value


INPUTS = [
    pytest.param("payment.completed", "payments.completed", example()["data"], id="payment"),
    pytest.param(
        "mechanic.accepted",
        "mechanics.accepted",
        {"session_id": SESSION, "mechanic_id": MECHANIC},
        id="acceptance",
    ),
    pytest.param("session.ended", "sessions.ended", {"session_id": SESSION}, id="end"),
]


@pytest.mark.parametrize(("event_type", "topic", "data"), INPUTS)
def test_a_binary_mode_event_decodes_to_exactly_the_model_of_its_structured_twin(
    event_type: str, topic: str, data: dict[str, Any]
) -> None:
    event = sdk_event(
        event_type,
        data,
        subject="s-1",
        dataschema="https://example.com/schema",
        time=datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=1))),
        traceparent="00-abc-def-01",
    )

    value, headers = binary(event)
    from_binary = DECODER.decode(value, topic, headers)
    value, headers = structured(event)
    from_structured = DECODER.decode(value, topic, headers)

    assert from_binary == from_structured
    assert type(from_binary) is schemas.INPUT_EVENT_CLASSES[event_type]
    assert (from_binary.source, from_binary.id) == ("payments", "evt_1QxY2b3c4d")
    assert from_binary.subject == "s-1"
    assert from_binary.time.utcoffset() == timedelta(hours=1)


@given(
    event_id=st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1),
    minutes=st.integers(min_value=-18 * 60, max_value=18 * 60),
    amount=st.integers(min_value=1, max_value=2**63 - 1),
    customer_id=st.uuids(),
)
def test_both_modes_of_any_valid_payment_decode_to_equal_events(
    event_id: str, minutes: int, amount: int, customer_id: UUID
) -> None:
    data = {**example()["data"], "amount_cents": amount, "customer_id": str(customer_id)}
    time = datetime(2026, 11, 24, 9, 30, tzinfo=timezone(timedelta(minutes=minutes)))
    event = sdk_event("payment.completed", data, id=event_id, time=time)

    value, headers = binary(event)
    from_binary = DECODER.decode(value, TOPIC, headers)
    value, headers = structured(event)

    assert from_binary == DECODER.decode(value, TOPIC, headers)
    assert from_binary.id == event_id


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type"])
def test_a_missing_required_header_is_refused_naming_it(header: str) -> None:
    error = refusal(*contract_binary(**{header: None}))

    assert error.kind is Kind.NOT_CLOUDEVENT
    assert error.reason == f"not a CloudEvent: missing required header {header!r}"


@pytest.mark.parametrize("header", ["ce_id", "ce_source", "ce_type", "ce_specversion"])
def test_an_empty_required_header_is_refused_naming_it(header: str) -> None:
    error = refusal(*contract_binary(**{header: b""}))

    assert error.kind is Kind.NOT_CLOUDEVENT
    assert f"header {header!r} must be a non-empty string" in error.reason


def test_an_unsupported_specversion_header_is_refused() -> None:
    error = refusal(*contract_binary(ce_specversion=b"0.3"))

    assert error.reason == "not a CloudEvent: unsupported ce_specversion '0.3', expected '1.0'"


@pytest.mark.parametrize(
    ("header", "header_value", "says"),
    [
        pytest.param("ce_time", None, "ce_time: Field required", id="no ce_time"),
        pytest.param(
            "ce_time",
            b"0001-01-01T00:10:00+01:00",
            "ce_time: Input should be greater than or equal to 1970-01-01T00:00:00Z, "
            "got '0001-01-01T00:10:00+01:00'",
            id="ce_time before 1970",
        ),
        pytest.param(
            "ce_time",
            b"2026-11-24T09:30:00",
            "ce_time: Input should have timezone info, got '2026-11-24T09:30:00'",
            id="naive ce_time",
        ),
        pytest.param(
            "ce_id",
            b"evt\x1f1",
            "ce_id: String should have no control characters, has U+001F at index 3",
            id="separator in ce_id",
        ),
        pytest.param(
            "ce_source",
            "é".encode() * 513,
            "ce_source: String should have at most 1024 bytes in UTF-8, not 1026",
            id="ce_source of 1026 bytes",
        ),
    ],
)
def test_a_bad_attribute_header_is_refused_naming_the_header_and_the_value(
    header: str, header_value: bytes | None, says: str
) -> None:
    error = refusal(*contract_binary(**{header: header_value}))

    assert error.kind is Kind.INVALID
    assert error.reason.startswith("invalid payment.completed: ")
    assert says in error.reason


def test_a_header_that_is_not_utf8_is_refused_naming_it() -> None:
    error = refusal(*contract_binary(ce_id=b"evt\xff"))

    assert error.kind is Kind.NOT_UTF8
    assert error.reason == "not UTF-8: header 'ce_id': invalid start byte at offset 3"


def test_a_repeated_attribute_header_is_refused_rather_than_guessed() -> None:
    value, headers = contract_binary()

    error = refusal(value, [*headers, ("ce_id", b"evt_other")])

    assert error.kind is Kind.NOT_CLOUDEVENT
    assert error.reason == "not a CloudEvent: header 'ce_id' appears more than once"


def test_a_binary_event_of_another_type_is_refused_as_on_the_wrong_topic() -> None:
    value, headers = binary(sdk_event("session.ended", {"session_id": SESSION}))

    error = refusal(value, headers)

    assert error.kind is Kind.WRONG_TOPIC
    assert error.reason == "type 'session.ended' is not expected on topic 'payments.completed'"
    assert refusal(*contract_binary(ce_type=b"foo.bar")).kind is Kind.UNKNOWN_TYPE


def test_invalid_data_is_refused_naming_the_field_and_the_value() -> None:
    data = {**example()["data"], "amount_cents": 0}

    error = refusal(*binary(sdk_event("payment.completed", data)))

    assert error.reason == (
        "invalid payment.completed: data.amount_cents: Input should be greater than 0, got 0"
    )


@pytest.mark.parametrize(
    ("value", "kind", "says"),
    [
        pytest.param(
            b"", Kind.NOT_JSON, "the message value (the event's data) is empty", id="empty"
        ),
        pytest.param(b"{nope", Kind.NOT_JSON, "not JSON: key must be a string", id="not JSON"),
        pytest.param(b"\xff{}", Kind.NOT_UTF8, "not UTF-8: invalid start byte", id="not UTF-8"),
        pytest.param(b"[1]", Kind.INVALID, "data: Input should be a JSON object", id="an array"),
    ],
)
def test_a_value_that_is_not_a_json_object_is_refused(
    value: bytes, kind: schemas.DecodeErrorKind, says: str
) -> None:
    _, headers = contract_binary()

    error = refusal(value, headers)

    assert error.kind is kind
    assert says in error.reason


def test_a_value_cannot_smuggle_in_attributes_of_its_own() -> None:
    _, headers = contract_binary()
    data = json.dumps(example()["data"]).encode()

    error = refusal(data + b', "id": "evt_smuggled"', headers)

    assert error.kind is Kind.NOT_JSON


def test_data_that_is_declared_to_be_something_other_than_json_is_refused_naming_content_type() -> (
    None
):
    error = refusal(*contract_binary(**{"content-type": b"application/avro"}))

    assert error.kind is Kind.INVALID
    assert error.reason == (
        "invalid payment.completed: content-type: the data must be JSON (application/json), "
        "got 'application/avro'"
    )


@pytest.mark.parametrize(
    "content_type", [None, b"application/json; charset=utf-8", b"application/vnd.pay+json"]
)
def test_json_data_is_read_whatever_json_media_type_it_declares(
    content_type: bytes | None,
) -> None:
    value, headers = contract_binary(**{"content-type": content_type})

    event = DECODER.decode(value, TOPIC, headers)

    assert event.datacontenttype == (None if content_type is None else content_type.decode())


def test_the_size_limit_applies_to_the_value_of_a_binary_event() -> None:
    _, headers = contract_binary()

    error = refusal(b" " * (schemas.MAX_EVENT_BYTES + 1), headers)

    assert error.kind is Kind.TOO_LARGE


@pytest.mark.parametrize(
    "content_type",
    [b"application/cloudevents+json", b"Application/CloudEvents+JSON; charset=UTF-8"],
)
def test_a_cloudevents_content_type_means_structured_mode_even_with_ce_headers(
    content_type: bytes,
) -> None:
    value, _ = structured(sdk_payment())
    _, ce_headers = contract_binary(**{"content-type": content_type, "ce_id": b"evt_header"})

    event = DECODER.decode(value, TOPIC, ce_headers)

    assert event.id == "evt_1QxY2b3c4d"  # from the value, not the header


def test_a_message_without_ce_specversion_is_structured_whatever_its_other_headers() -> None:
    value, _ = structured(sdk_payment())
    headers: Headers = [("traceparent", b"00-abc"), ("content-type", b"application/json")]

    assert DECODER.decode(value, TOPIC, headers) == DECODER.decode(value, TOPIC)
    # ...so a binary-mode value missing its ce_specversion is refused as not a CloudEvent.
    data, ce_headers = contract_binary(ce_specversion=None)
    assert refusal(data, ce_headers).kind is Kind.NOT_CLOUDEVENT


def test_other_headers_are_ignored_and_ce_data_never_stands_in_for_the_value() -> None:
    value, headers = contract_binary()
    extra: Headers = [("ce_traceparent", b"00-abc"), ("ce_data", b"{}"), ("x-other", None)]

    event = DECODER.decode(value, TOPIC, [*extra, *headers])

    assert event == DECODER.decode(value, TOPIC, headers)


def test_header_names_are_the_bindings_lower_case_spelling() -> None:
    value, headers = contract_binary()
    renamed = [("CE_ID" if name == "ce_id" else name, raw) for name, raw in headers]

    assert refusal(value, renamed).reason == "not a CloudEvent: missing required header 'ce_id'"


# The output side


def output_events() -> list[schemas.OutputEvent]:
    ids = [UUID(int=n) for n in range(1, 4)]
    at = datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=UTC)
    datas: list[schemas.OutputEventData] = [
        schemas.SessionCreated(
            session_id=ids[0],
            customer_id=ids[1],
            payment_id="pi_é",
            session_type=schemas.SessionType.VIDEO,
            created_at=at,
            expires_at=at + timedelta(minutes=15),
        ),
        schemas.SessionRejected(payment_id="pi_1", customer_id=ids[1], active_session_id=ids[0]),
    ]
    return [schemas.output_event(data, causation_id="evt_1", time=at) for data in datas]


def test_encode_binary_maps_every_attribute_but_data_to_a_header_in_a_fixed_order() -> None:
    created, rejected = output_events()

    headers, value = schemas.encode_binary(created)

    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", created.id.encode()),
        ("ce_source", b"session-fulfillment"),
        ("ce_type", b"session.created"),
        ("ce_subject", str(UUID(int=1)).encode()),
        ("ce_time", b"2026-11-24T09:30:00.250000Z"),
        ("content-type", b"application/json"),
        ("ce_causationid", b"evt_1"),
        ("ce_causationsource", b"session-fulfillment"),
    ]
    assert json.loads(value) == json.loads(schemas.encode(created))["data"]
    # No subject, no ce_subject header.
    assert "ce_subject" not in dict(schemas.encode_binary(rejected)[0])


@given(data=output_data())
def test_encode_binary_is_deterministic_and_its_value_is_the_structured_data(
    data: schemas.OutputEventData,
) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=datetime(2026, 1, 1, tzinfo=UTC))
    again = schemas.output_event(
        type(data).model_validate_json(data.model_dump_json()),
        causation_id="evt_1",
        time=event.time.astimezone(timezone(timedelta(hours=-7))),
    )

    headers, value = schemas.encode_binary(event)

    assert schemas.encode_binary(again) == (headers, value)
    assert schemas.encode(event).endswith(b',"data":' + value + b"}")


@given(data=output_data())
def test_stored_structured_bytes_convert_to_exactly_what_encode_binary_writes(
    data: schemas.OutputEventData,
) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=datetime(2026, 1, 1, tzinfo=UTC))

    assert binary_from_structured(schemas.encode(event)) == schemas.encode_binary(event)


@given(data=output_data())
def test_an_output_read_back_from_binary_mode_is_the_bytes_encode_wrote(
    data: schemas.OutputEventData,
) -> None:
    event = schemas.output_event(data, causation_id="evt_1", time=datetime(2026, 1, 1, tzinfo=UTC))
    headers, value = schemas.encode_binary(event)
    # As the relay sends it: its trace context rides along, and is no attribute.
    received = [*headers, ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]

    assert schemas.is_binary_mode(received)
    assert schemas.structured_from_binary(received, value) == schemas.encode(event)


def test_converting_bytes_that_are_no_structured_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not a structured-mode CloudEvent"):
        binary_from_structured(b'{"specversion": "1.0"}')


@pytest.mark.parametrize("event", output_events(), ids=lambda event: event.type)
def test_the_sdk_reads_both_our_modes_back_to_the_same_attributes_and_data(
    event: schemas.OutputEvent,
) -> None:
    headers, value = schemas.encode_binary(event)
    read_binary = kafka.from_binary(kafka.KafkaMessage(dict(headers), None, value), FORMAT)
    structured_message = kafka.KafkaMessage(
        {"content-type": schemas.CLOUDEVENTS_CONTENT_TYPE.encode()}, None, schemas.encode(event)
    )
    read_structured = kafka.from_structured(structured_message, FORMAT)

    assert read_binary.get_attributes() == read_structured.get_attributes()
    assert read_binary.get_data() == read_structured.get_data()
    expected = json.loads(schemas.encode(event))
    attributes = read_binary.get_attributes()
    assert attributes["id"] == expected["id"]
    assert attributes["causationid"] == "evt_1"
    assert attributes["time"] == event.time
    assert read_binary.get_data() == expected["data"]


@given(
    data=output_data(),
    causation_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
    minutes=st.integers(min_value=-18 * 60, max_value=18 * 60),
)
def test_the_sdk_reads_any_output_event_in_both_modes_to_the_same_attributes_and_data(
    data: schemas.OutputEventData, causation_id: str, minutes: int
) -> None:
    time = datetime(2026, 11, 24, 9, 30, tzinfo=timezone(timedelta(minutes=minutes)))
    event = schemas.output_event(data, causation_id=causation_id, time=time)

    headers, value = schemas.encode_binary(event)
    read_binary = kafka.from_binary(kafka.KafkaMessage(dict(headers), None, value), FORMAT)
    structured_message = kafka.KafkaMessage(
        {"content-type": schemas.CLOUDEVENTS_CONTENT_TYPE.encode()}, None, schemas.encode(event)
    )
    read_structured = kafka.from_structured(structured_message, FORMAT)

    assert read_binary.get_attributes() == read_structured.get_attributes()
    assert read_binary.get_data() == read_structured.get_data()
    assert read_binary.get_attributes()["causationid"] == causation_id
    assert read_binary.get_time() == time
    assert read_binary.get_subject() == data.subject
