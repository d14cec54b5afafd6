"""The contract's own example, and the names the models share with it."""

from __future__ import annotations

import subprocess
import sys
import typing
from datetime import UTC, datetime
from uuid import UUID

import schemas
from tests.unit.schemas.examples import CONTRACT_EXAMPLE


def test_the_contract_example_decodes_into_a_payment_completed_event() -> None:
    decoder = schemas.Decoder({"payments.completed": schemas.PAYMENT_COMPLETED})

    event = decoder.decode(CONTRACT_EXAMPLE, "payments.completed")

    assert isinstance(event, schemas.PaymentCompletedEvent)
    assert event.id == "evt_1QxY2b3c4d"
    assert event.source == "payments"
    assert event.type == "payment.completed"
    assert event.time == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert event.datacontenttype == "application/json"
    assert event.data == schemas.PaymentCompleted(
        payment_id="pi_3QxY2b3c4d5e",
        customer_id=UUID("6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41"),
        amount_cents=2999,
        currency="USD",
        session_type=schemas.SessionType.VIDEO,
    )


def test_every_event_class_declares_the_type_name_it_is_registered_under() -> None:
    classes = {**schemas.INPUT_EVENT_CLASSES, **schemas.OUTPUT_EVENT_CLASSES}

    assert list(classes) == list(schemas.EVENT_TYPES)
    for event_type, event_class in classes.items():
        assert typing.get_args(event_class.model_fields["type"].annotation) == (event_type,)


def test_every_output_event_class_knows_its_type_without_an_instance() -> None:
    for event_type, event_class in schemas.OUTPUT_EVENT_CLASSES.items():
        assert event_class.event_type == event_type
        assert event_class.model_fields["type"].default == event_type


def test_the_default_topics_are_the_contract_topics() -> None:
    assert schemas.DEFAULT_TOPICS.input_types() == {
        "payments.completed": "payment.completed",
        "mechanics.accepted": "mechanic.accepted",
        "sessions.ended": "session.ended",
    }
    assert schemas.DEFAULT_TOPICS.sessions_events == "sessions.events"
    assert schemas.DEFAULT_TOPICS.dlq == "fulfillment.dlq"


def test_the_closed_vocabularies_are_those_of_the_contract() -> None:
    assert [t.value for t in schemas.SessionType] == ["chat", "video", "diagnostic"]
    assert [r.value for r in schemas.AcceptanceRejectionReason] == [
        "expired",
        "cancelled",
        "already_accepted",
        "completed",
        "unknown_session",
    ]
    assert [r.value for r in schemas.CompletionReason] == ["ended", "timed_out"]
    assert typing.get_args(schemas.RejectionReason) == ("active_session",)
    assert typing.get_args(schemas.CancellationReason) == ("expired",)


def test_the_schemas_package_loads_without_the_service() -> None:
    probe = (
        "import sys, schemas, schemas.export; "
        "print(sorted(m for m in sys.modules if m == 'service' or m.startswith('service.')))"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"
