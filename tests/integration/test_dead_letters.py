"""Guarantee 6 on the real stack: a message that cannot be decoded or validated lands on the DLQ
byte for byte, with its key and headers and the error, and the partition moves on past it."""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

import schemas
from service.adapters import postgres
from tests.fault.tools import Offsets, wait_until, wall_now
from tests.harness import Outcomes, Producer, acceptance, cloudevent, payment, running

pytestmark = pytest.mark.integration

ORIGINAL_HEADERS = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]


def _bad_messages(customer: uuid.UUID) -> list[tuple[bytes | None, schemas.DecodeErrorKind]]:
    """(value, the error kind the service must report), in the order they are sent."""
    now = wall_now()
    good = orjson.loads(payment(customer, "pi_bad", time=now))
    invalid = good | {"data": good["data"] | {"amount_cents": 0}}
    return [
        (b'{"specversion": "1.0", "id": ', schemas.DecodeErrorKind.NOT_JSON),
        (orjson.dumps(invalid), schemas.DecodeErrorKind.INVALID),
        (
            cloudevent("payment.refunded", good["data"], time=now),
            schemas.DecodeErrorKind.UNKNOWN_TYPE,
        ),
        (acceptance(uuid.uuid4(), uuid.uuid4(), time=now), schemas.DecodeErrorKind.WRONG_TOPIC),
        (b"\xff\xfe not utf-8", schemas.DecodeErrorKind.NOT_UTF8),
        (None, schemas.DecodeErrorKind.NOT_JSON),  # a tombstone is not an event either
    ]


def _headers(record: Any) -> list[tuple[str, bytes]]:
    return [(k, bytes(v)) for k, v in record.headers]


def _error_headers(record: Any) -> dict[str, bytes]:
    found = [(k, v) for k, v in _headers(record) if k in schemas.DLQ_HEADERS]
    assert sorted(k for k, _ in found) == sorted(schemas.DLQ_HEADERS), "each error header once"
    return dict(found)


@pytest.mark.timeout(60)
async def test_malformed_messages_land_on_the_dlq_byte_for_byte_and_the_partition_moves_on(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    bad = _bad_messages(customer)
    started = datetime.now(UTC)
    async with (
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),
    ):
        for i, (value, _) in enumerate(bad):
            await producer.send(
                settings.topic_payments,
                value,  # type: ignore[arg-type]  # None: a tombstone
                key=f"key-{i}".encode(),
                partition=0,
                headers=[*ORIGINAL_HEADERS, ("attempt", str(i).encode())],
            )
        await producer.pay(customer, "pi_ok", time=wall_now(), partition=0)
        [created] = await outcomes.wait_count(1)
        await dlq.wait_for(lambda o: len(o.records) >= len(bad))
        async with Offsets(settings) as offsets:

            async def committed_past_all() -> bool:
                tp = offsets.partitions([settings.topic_payments])[0]
                return (await offsets.committed()).get(tp) == len(bad) + 1

            await wait_until(committed_past_all, within=10)
    assert created.type == schemas.SESSION_CREATED
    assert isinstance(created.data, schemas.SessionCreated)
    assert created.data.payment_id == "pi_ok"
    assert len(dlq.records) == len(bad)
    # The DLQ is keyed by the original key, so its records spread over its partitions.
    by_key = {r.key: r for r in dlq.records}
    for i, (value, kind) in enumerate(bad):
        record = by_key[f"key-{i}".encode()]
        assert record.value == value
        original = _headers(record)[: len(ORIGINAL_HEADERS) + 1]
        assert original == [*ORIGINAL_HEADERS, ("attempt", str(i).encode())]
        errors = _error_headers(record)
        assert errors[schemas.DLQ_ERROR_KIND] == kind.value.encode()
        assert errors[schemas.DLQ_ERROR_REASON].strip()
        assert errors[schemas.DLQ_SOURCE_TOPIC] == settings.topic_payments.encode()
        assert errors[schemas.DLQ_SOURCE_PARTITION] == b"0"
        assert errors[schemas.DLQ_SOURCE_OFFSET] == str(i).encode()
        assert errors[schemas.DLQ_ORIGINAL] == f"{settings.topic_payments}:0:{i}".encode()
        failed_at = datetime.fromisoformat(errors[schemas.DLQ_FAILED_AT].decode())
        assert started <= failed_at <= datetime.now(UTC)
    reason = _error_headers(by_key[b"key-1"])[schemas.DLQ_ERROR_REASON].decode()
    assert "amount_cents" in reason
    assert await pool.fetchval("SELECT count(*) FROM payments") == 1


@pytest.mark.timeout(60)
async def test_a_redriven_dead_letter_is_dead_lettered_again_without_piling_up_error_headers(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    async with (
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),
    ):
        await producer.send(
            settings.topic_payments, b"not json", key=b"k", partition=1, headers=ORIGINAL_HEADERS
        )
        await dlq.wait_for(lambda o: len(o.records) >= 1)
        first = dlq.records[0]
        # An operator redrives it as it is, headers and all: it fails again.
        await producer.send(
            settings.topic_payments,
            first.value,
            key=first.key,
            partition=1,
            headers=_headers(first),
        )
        await dlq.wait_for(lambda o: len(o.records) >= 2)
        # Then fixed, still carrying the old error headers: decided like any payment.
        await producer.send(
            settings.topic_payments,
            payment(customer, "pi_fixed", time=wall_now()),
            key=first.key,
            partition=1,
            headers=_headers(dlq.records[1]),
        )
        [created] = await outcomes.wait_count(1)
    second = dlq.records[1]
    assert (second.value, second.key) == (b"not json", b"k")
    assert _headers(second)[: len(ORIGINAL_HEADERS)] == ORIGINAL_HEADERS
    assert len(_headers(second)) == len(ORIGINAL_HEADERS) + len(schemas.DLQ_HEADERS)
    errors = _error_headers(second)
    assert errors[schemas.DLQ_SOURCE_OFFSET] == b"1"  # where it failed this time
    # ... and where it failed first, carried over from the header the redrive kept.
    assert errors[schemas.DLQ_ORIGINAL] == f"{settings.topic_payments}:1:0".encode()
    assert errors[schemas.DLQ_ERROR_KIND] == schemas.DecodeErrorKind.NOT_JSON.value.encode()
    assert isinstance(created.data, schemas.SessionCreated)
    assert created.data.payment_id == "pi_fixed"
    assert len(dlq.records) == 2


@pytest.mark.timeout(60)
async def test_a_batch_with_dead_letters_is_freed_at_once_not_left_to_the_cycle_collector(
    make_settings: Any,
) -> None:
    # A dead letter's error once held the consumer's frame, and with it the whole batch, in
    # a reference cycle: under a mixed stream every batch waited for a collection, and RSS
    # grew with the batch size (bench/README.md).
    settings = make_settings()
    gc.disable()  # only the collection below may find cycles
    try:
        left = await _cyclic_records_after_dead_letters(settings)
    finally:
        gc.enable()
    assert left == []


async def _cyclic_records_after_dead_letters(settings: Any) -> list[Any]:
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        for _ in range(50):
            await producer.send(settings.topic_payments, b"not json", key=b"k", partition=0)
        for i in range(20):
            await producer.pay(uuid.uuid4(), f"pi_after_{i}", time=wall_now(), partition=0)
        await outcomes.wait_count(20)
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            left = [
                o
                for o in gc.garbage
                if type(o).__name__ == "ConsumerRecord"
                and getattr(o, "topic", None) == settings.topic_payments
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    return left
