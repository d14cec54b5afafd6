"""The contract document names everything the code puts on the wire: every event type, every
default topic, every dead-letter header."""

from __future__ import annotations

from pathlib import Path

import pytest

import schemas
from schemas import topics

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "contract.md"
TEXT = CONTRACT.read_text(encoding="utf-8")
DEFAULT_TOPICS = [
    topics.PAYMENTS_COMPLETED,
    topics.MECHANICS_ACCEPTED,
    topics.SESSIONS_ENDED,
    topics.SESSIONS_EVENTS,
    topics.FULFILLMENT_DLQ,
]


@pytest.mark.parametrize("event_type", sorted(schemas.EVENT_TYPES))
def test_the_contract_names_every_event_type(event_type: str) -> None:
    assert f"`{event_type}`" in TEXT


@pytest.mark.parametrize("topic", DEFAULT_TOPICS)
def test_the_contract_names_every_default_topic(topic: str) -> None:
    assert f"`{topic}`" in TEXT


@pytest.mark.parametrize("header", schemas.DLQ_HEADERS)
def test_the_contract_names_every_dead_letter_header(header: str) -> None:
    assert f"`{header}`" in TEXT


@pytest.mark.parametrize("kind", [k.value for k in schemas.DecodeErrorKind])
def test_the_contract_names_every_kind_of_decode_error(kind: str) -> None:
    assert f"`{kind}`" in TEXT
