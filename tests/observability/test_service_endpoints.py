"""A running service answers /healthz, /readyz and /metrics: readiness follows its PostgreSQL
going away and coming back, the metrics move with the events and agree with what reaches
sessions.events, and a traceparent sent with a payment comes back on what it caused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

import schemas
from service.core.batch import BatchResult
from service.core.ports import Store
from service.handlers.consume import handle_batch
from tests.harness import Outcomes, Producer, payment, running
from tests.observability.service_http import address_of, get, scrape, until, value
from tests.observability.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ATTRIBUTE_TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.timeout(60)
async def test_a_running_service_is_alive_ready_and_serves_its_metrics(make_settings: Any) -> None:
    settings = make_settings()
    async with running(settings) as service:
        address = await address_of(service)
        status, _ = await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 30)
        alive = await get(address, "/healthz")
        samples = await scrape(address)

    assert status == 200
    assert alive == (200, {"alive": True})
    assert value(samples, "fulfillment_ready") == 1
    assert ("fulfillment_build_info", frozenset({("version", "0.1.0")})) in samples
    assert value(samples, "fulfillment_outbox_backlog") == 0


@pytest.mark.timeout(90)
async def test_readiness_turns_503_within_two_sweep_intervals_of_postgresql_going_and_back(
    make_settings: Any, fresh_dsn: str
) -> None:
    database = urlsplit(fresh_dsn)
    assert database.hostname is not None and database.port is not None
    async with TcpProxy(database.hostname, database.port) as proxy:
        through_proxy = database._replace(
            netloc=database.netloc.replace(f":{database.port}", f":{proxy.port}")
        ).geturl()
        interval = 1.0
        settings = make_settings(database_url=through_proxy, sweep_interval_seconds=interval)
        async with running(settings) as service:
            address = await address_of(service)
            await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 30)

            await proxy.cut()
            cut = time.monotonic()
            status, _ = await until(
                lambda: get(address, "/readyz"), lambda r: r[0] == 503, 2 * interval + 3
            )
            unready_after = time.monotonic() - cut
            # Whichever notices first (a loop backing off, the check), the check names it too.
            _, body = await until(
                lambda: get(address, "/readyz"),
                lambda r: "postgresql" in r[1].get("problems", {}),
                2 * interval + 3,
            )
            named_after = time.monotonic() - cut
            alive_meanwhile = await get(address, "/healthz")
            samples = await scrape(address)

            await proxy.restore()
            back = await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 30)

    assert status == 503 and body["ready"] is False
    # Two intervals, plus scheduling slack on a busy machine.
    assert unready_after <= named_after <= 2 * interval + 1.0, (unready_after, named_after)
    assert value(samples, "fulfillment_ready") == 0
    assert alive_meanwhile == (200, {"alive": True})  # an outage is no reason to restart it
    assert back == (200, {"ready": True})


class FailingDecisions:
    """Stands in for `handle_batch`: raises while `failing`, else decides as the real one."""

    def __init__(self) -> None:
        self.failing = True

    async def __call__(
        self, store: Store, events: Sequence[schemas.InputEvent], **kw: Any
    ) -> BatchResult:
        if self.failing:
            raise ZeroDivisionError("a bug in the decision code")
        return await handle_batch(store, events, **kw)


@pytest.mark.timeout(60)
async def test_a_consumer_backing_off_a_failing_batch_is_not_ready_until_the_batch_succeeds(
    make_settings: Any,
) -> None:
    settings = make_settings(retry_backoff_max_seconds=0.3)
    decisions = FailingDecisions()
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings, handle=decisions) as service,
    ):
        address = await address_of(service)
        await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 30)
        before = await scrape(address)
        await producer.pay(uuid.uuid4(), "pi_failing", time=datetime.now(UTC))
        _, body = await until(lambda: get(address, "/readyz"), lambda r: r[0] == 503, 20)
        during = await scrape(address)
        decisions.failing = False
        await outcomes.wait_count(1, within=20)
        back = await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 10)

    backing_off = [name for name in body["problems"] if name.endswith(" decide loop")]
    assert backing_off and backing_off[0].startswith("consumer "), body
    assert "ZeroDivisionError" in body["problems"][backing_off[0]]
    retries = {"loop": "decide", "kind": "bug"}
    assert value(during, "fulfillment_retries_total", **retries) > value(
        before, "fulfillment_retries_total", **retries
    )
    assert value(during, "fulfillment_ready") == 0
    assert back == (200, {"ready": True})


@pytest.mark.timeout(90)
async def test_the_metrics_move_with_the_events_and_match_the_outputs_on_sessions_events(
    make_settings: Any,
) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    customers = [uuid.uuid4() for _ in range(6)]
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings) as service,
    ):
        address = await address_of(service)
        await until(lambda: get(address, "/readyz"), lambda r: r[0] == 200, 30)
        before = await scrape(address)
        for i, customer in enumerate(customers):
            await producer.pay(customer, f"pi_m_{i}", time=now, event_id=f"m-{i}")
        await producer.pay(customers[0], "pi_m_0", time=now, event_id="m-0")  # redelivered
        await producer.pay(customers[0], "pi_m_again", time=now + timedelta(seconds=1))
        await producer.pay(customers[1], "pi_m_again1", time=now + timedelta(seconds=1))
        await producer.send(settings.topic_payments, b"not json")
        await producer.send(settings.topic_payments, b"{}")
        await outcomes.wait_count(8, within=30)
        for i in (2, 3):
            session = schemas.session_id_for_payment(f"pi_m_{i}")
            await producer.accept(session, uuid.uuid4(), time=now + timedelta(seconds=2))
        await producer.end(
            schemas.session_id_for_payment("pi_m_2"), time=now + timedelta(seconds=3)
        )
        await outcomes.wait_count(11, within=30)
        after = await until(
            lambda: scrape(address),
            # A batch's metrics are recorded after its offsets commit, which can be after the
            # relay published its outputs: wait for both.
            lambda s: (
                value(s, "fulfillment_published_total")
                - value(before, "fulfillment_published_total")
                >= len(outcomes.records)
                and value(s, "fulfillment_batch_events_sum")
                - value(before, "fulfillment_batch_events_sum")
                >= 14
            ),
            within=10,
        )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def events(type_: str, outcome: str) -> float:
        return moved("fulfillment_events_total", type=type_, outcome=outcome)

    def on_topic(type_: str) -> int:
        return len(outcomes.of_type(type_))

    paid, accepted, ended = (
        schemas.PAYMENT_COMPLETED,
        schemas.MECHANIC_ACCEPTED,
        schemas.SESSION_ENDED,
    )
    assert events(paid, "created") == on_topic(schemas.SESSION_CREATED) == 6
    assert events(paid, "rejected") == on_topic(schemas.SESSION_REJECTED) == 2
    assert events(accepted, "accepted") == on_topic(schemas.SESSION_ACCEPTED) == 2
    assert events(ended, "completed") == on_topic(schemas.SESSION_COMPLETED) == 1
    assert events(paid, "duplicate") == 1
    assert events(paid, "dead_lettered") == 2
    assert moved("fulfillment_dlq_total", reason="not_json") == 1
    assert moved("fulfillment_dlq_total", reason="not_cloudevent") == 1
    assert moved("fulfillment_published_total") == len(outcomes.records) == 11
    assert moved("fulfillment_decision_seconds_count") == 12  # every decoded event, dup included
    assert moved("fulfillment_batch_events_sum") == 14  # the dead letters too
    assert moved("fulfillment_batch_seconds_count") >= 1


@pytest.mark.timeout(60)
async def test_a_traceparent_sent_with_a_payment_comes_back_on_its_session_created(
    make_settings: Any,
) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    by_header, by_attribute, untraced = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with_attribute = orjson.loads(payment(by_attribute, "pi_t_attr", time=now))
    with_attribute["traceparent"] = ATTRIBUTE_TRACE
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),
    ):
        await producer.send(
            settings.topic_payments,
            payment(by_header, "pi_t_header", time=now),
            key=str(by_header).encode(),
            headers=[("traceparent", TRACE.encode())],
        )
        await producer.send(
            settings.topic_payments, orjson.dumps(with_attribute), key=str(by_attribute).encode()
        )
        await producer.pay(untraced, "pi_t_none", time=now)
        await outcomes.wait_count(3, within=30)

    def trace_of(customer: uuid.UUID) -> list[bytes]:
        (record,) = [
            r
            for r in outcomes.records
            if orjson.loads(r.value)["data"]["customer_id"] == str(customer)
        ]
        assert schemas.decode_output(record.value).type == schemas.SESSION_CREATED
        assert b"traceparent" not in record.value  # the payload is as it always was
        return [v for k, v in record.headers if k == "traceparent"]

    assert trace_of(by_header) == [TRACE.encode()]
    assert trace_of(by_attribute) == [ATTRIBUTE_TRACE.encode()]
    assert trace_of(untraced) == []
