"""Decoder configuration: topics are passed in, and a misconfiguration is not a bad message."""

from __future__ import annotations

import json

import pytest

import schemas
from tests.unit.schemas.examples import example

TOPIC = "payments.completed"
DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())
EXAMPLE = example()
PAYMENT = json.dumps(EXAMPLE).encode()
TWO_MEGABYTES = json.dumps({**EXAMPLE, "padding": "x" * 2 * 1024 * 1024}).encode()


def test_each_topic_decodes_its_own_event_type() -> None:
    accepted = {
        **EXAMPLE,
        "type": "mechanic.accepted",
        "data": {
            "session_id": "c3a7967d-00d4-57d9-8266-5c972e244302",
            "mechanic_id": "0b0e7bb1-4b1f-4c5c-9d5e-2f3a4b5c6d7e",
        },
    }
    ended = {
        **EXAMPLE,
        "type": "session.ended",
        "data": {"session_id": accepted["data"]["session_id"]},
    }

    assert isinstance(
        DECODER.decode(json.dumps(accepted).encode(), "mechanics.accepted"),
        schemas.MechanicAcceptedEvent,
    )
    assert isinstance(
        DECODER.decode(json.dumps(ended).encode(), "sessions.ended"), schemas.SessionEndedEvent
    )


def test_topic_names_are_configurable() -> None:
    decoder = schemas.Decoder({"prod.payments.v1": schemas.PAYMENT_COMPLETED})

    assert isinstance(decoder.decode(PAYMENT, "prod.payments.v1"), schemas.PaymentCompletedEvent)


def test_the_size_limit_is_what_refuses_a_large_payload_and_it_can_be_raised() -> None:
    roomy = schemas.Decoder({TOPIC: schemas.PAYMENT_COMPLETED}, max_event_bytes=4 * 1024 * 1024)
    tight = schemas.Decoder({TOPIC: schemas.PAYMENT_COMPLETED}, max_event_bytes=100)

    assert isinstance(roomy.decode(TWO_MEGABYTES, TOPIC), schemas.PaymentCompletedEvent)
    with pytest.raises(schemas.DecodeError) as refused:
        tight.decode(PAYMENT, TOPIC)
    assert refused.value.kind is schemas.DecodeErrorKind.TOO_LARGE


def test_a_topic_the_decoder_was_not_given_is_a_configuration_error_not_a_bad_message() -> None:
    with pytest.raises(ValueError, match="no event type configured for topic 'elsewhere'"):
        DECODER.decode(PAYMENT, "elsewhere")


def test_a_decoder_cannot_be_configured_with_an_output_or_unknown_type() -> None:
    with pytest.raises(ValueError, match=r"session\.created"):
        schemas.Decoder({"sessions.events": schemas.SESSION_CREATED})
