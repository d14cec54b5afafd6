"""The instance's one producer broken underneath (real Kafka and PostgreSQL): whoever finds it
broken has it replaced for every user, so dead letters go out again; a producer that cannot be
replaced makes /healthz fail, so that an orchestrator restarts the instance."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from service.bootstrap.factory import Clients
from tests.fault.tools import wall_now
from tests.harness import Outcomes, Producer, running
from tests.observability.service_http import address_of, get, until

pytestmark = pytest.mark.fault


def recording_producers(
    monkeypatch: pytest.MonkeyPatch, *, replacements: dict[str, Any] | None = None
) -> list[AIOKafkaProducer]:
    """Every producer the wiring makes from now on, in order; the ones after the first made
    with `replacements` (client options) when given."""
    made: list[AIOKafkaProducer] = []
    real = Clients.producer

    def producer(self: Clients, **overrides: Any) -> AIOKafkaProducer:
        if made and replacements is not None:
            overrides = overrides | replacements
        made.append(real(self, **overrides))
        return made[-1]

    monkeypatch.setattr(Clients, "producer", producer)
    return made


@pytest.mark.timeout(90)
async def test_dead_letters_go_out_again_after_the_shared_producer_broke_underneath(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(kafka_produce_timeout_seconds=2, retry_backoff_max_seconds=0.5)
    customer = uuid.uuid4()
    async with (
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
    ):
        made = recording_producers(monkeypatch)
        async with running(settings):
            await producer.pay(customer, "pi_1", time=wall_now())
            await outcomes.wait_count(1, within=30)  # the service is up and has published
            await made[0].stop()  # aiokafka's producer, once closed, never answers again
            await producer.send(settings.topic_payments, b"not json", key=b"undecodable")
            await dlq.wait_for(lambda o: len(o.records) >= 1, within=45)
    assert [r.value for r in dlq.records] == [b"not json"]


@pytest.mark.timeout(90)
async def test_a_shared_producer_that_cannot_be_replaced_makes_healthz_fail(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(kafka_produce_timeout_seconds=2, retry_backoff_max_seconds=0.5)
    async with Outcomes(settings) as outcomes, Producer(settings) as producer:
        # Every replacement points at a port where no broker listens: its start() fails.
        made = recording_producers(monkeypatch, replacements={"bootstrap_servers": "127.0.0.1:1"})
        async with running(settings) as service:
            address = await address_of(service)
            await producer.pay(uuid.uuid4(), "pi_1", time=wall_now())
            await outcomes.wait_count(1, within=30)
            assert (await get(address, "/healthz"))[0] == 200
            await made[0].stop()
            await producer.send(settings.topic_payments, b"not json", key=b"undecodable")
            status, body = await until(lambda: get(address, "/healthz"), lambda r: r[0] == 503, 45)
    assert status == 503, body
