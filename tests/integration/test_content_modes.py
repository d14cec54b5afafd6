"""The CloudEvents Kafka protocol binding, both content modes, through the running service and the
official CloudEvents SDK on either side."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

import schemas
from tests.fault.tools import wall_now
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.integration

FORMAT = JSONFormat()


def sdk_payment(customer: uuid.UUID, payment_id: str, *, time: datetime) -> SdkEvent:
    return SdkEvent(
        attributes={
            "id": f"evt-{payment_id}",
            "source": "payment-pipeline",
            "type": schemas.PAYMENT_COMPLETED,
            "time": time,
            "datacontenttype": "application/json",
        },
        data={
            "payment_id": payment_id,
            "customer_id": str(customer),
            "amount_cents": 2999,
            "currency": "USD",
            "session_type": "video",
        },
    )


async def send(producer: Producer, topic: str, message: kafka.KafkaMessage, key: bytes) -> None:
    await producer.send(topic, message.value, key=key, headers=list(message.headers.items()))


def comparable(event: schemas.OutputEvent) -> dict[str, Any]:
    """What must agree between the two modes' outcomes: all but the ids that differ by design."""
    data = event.data.model_dump(mode="json")
    data.pop("session_id"), data.pop("payment_id"), data.pop("customer_id")
    return {"type": event.type, "source": event.source, "data": data}


async def test_a_binary_mode_payment_from_the_sdk_is_fulfilled_exactly_like_a_structured_one(
    make_settings: Any,
) -> None:
    settings = make_settings()
    structured_customer, binary_customer = uuid.uuid4(), uuid.uuid4()
    now = wall_now()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await send(
            producer,
            settings.topic_payments,
            kafka.to_structured(sdk_payment(structured_customer, "pi_s", time=now), FORMAT),
            str(structured_customer).encode(),
        )
        await send(
            producer,
            settings.topic_payments,
            kafka.to_binary(sdk_payment(binary_customer, "pi_b", time=now), FORMAT),
            str(binary_customer).encode(),
        )
        await outcomes.wait_count(2)
    by_payment = {e.data.payment_id: e for e in outcomes.events if hasattr(e.data, "payment_id")}
    assert set(by_payment) == {"pi_s", "pi_b"}
    assert by_payment["pi_b"].type == schemas.SESSION_CREATED
    assert comparable(by_payment["pi_b"]) == comparable(by_payment["pi_s"])
    assert by_payment["pi_b"].causationid == "evt-pi_b"


async def test_a_binary_mode_event_without_its_id_header_is_dead_lettered_naming_the_header(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    message = kafka.to_binary(sdk_payment(customer, "pi_1", time=wall_now()), FORMAT)
    headers = [(k, v) for k, v in message.headers.items() if k != "ce_id"]
    async with (
        Outcomes(settings, topic=settings.topic_dlq) as dead,
        Producer(settings) as producer,
        running(settings),
    ):
        await producer.send(settings.topic_payments, message.value, headers=headers)
        await dead.wait_for(lambda o: len(o.records) >= 1)
    record = dead.records[0]
    assert record.value == message.value
    found = dict(record.headers)
    assert b"ce_id" in found[schemas.DLQ_ERROR_REASON]


@pytest.mark.parametrize("mode", ["structured", "binary"])
async def test_every_output_parses_with_the_sdk_in_the_configured_content_mode(
    make_settings: Any, mode: str
) -> None:
    settings = make_settings(output_content_mode=mode)
    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=wall_now())
        await producer.pay(customer, "pi_2", time=wall_now())
        await outcomes.wait_for(lambda o: len(o.records) >= 2)
    for record in outcomes.records:
        message = kafka.KafkaMessage(
            headers=dict(record.headers), key=record.key, value=record.value
        )
        parse = kafka.from_binary if mode == "binary" else kafka.from_structured
        event = parse(message, FORMAT)
        assert event.get_type() in (schemas.SESSION_CREATED, schemas.SESSION_REJECTED)
        assert event.get_extension("causationid")
        data = event.get_data()
        assert isinstance(data, dict) and data["customer_id"] == str(customer)
        if mode == "binary":
            # The value is the data alone, not a whole CloudEvent.
            assert "specversion" not in orjson.loads(record.value)
        else:
            assert schemas.decode_output(record.value).id == event.get_id()
