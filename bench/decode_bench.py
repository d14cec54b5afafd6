"""Events per second of the schemas hot paths on one core: decode, build, encode.

    .venv/bin/python bench/decode_bench.py [--n 200000]

Each figure is the best of five rounds (the one least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

import schemas

# The contract's example, as a producer would send it (compact, as most JSON libraries write).
PAYMENT = (
    b'{"specversion":"1.0","id":"evt_1QxY2b3c4d","source":"payments",'
    b'"type":"payment.completed","time":"2026-11-24T09:30:00Z",'
    b'"datacontenttype":"application/json","data":{"payment_id":"pi_3QxY2b3c4d5e",'
    b'"customer_id":"6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41","amount_cents":2999,'
    b'"currency":"USD","session_type":"video"}}'
)
# The same event in binary content mode: attributes in headers, `data` as the value.
BINARY_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"evt_1QxY2b3c4d"),
    ("ce_source", b"payments"),
    ("ce_type", b"payment.completed"),
    ("ce_time", b"2026-11-24T09:30:00Z"),
    ("content-type", b"application/json"),
]
BINARY_VALUE = (
    b'{"payment_id":"pi_3QxY2b3c4d5e","customer_id":"6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41",'
    b'"amount_cents":2999,"currency":"USD","session_type":"video"}'
)
STRUCTURED_HEADERS = [("content-type", b"application/cloudevents+json")]
ROUNDS = 5


def rate(label: str, n: int, run: Callable[[int], object]) -> None:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - started)
    print(f"{label:<56} {n / best:>11,.0f} /s {best / n * 1e6:7.2f} us each")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    n = parser.parse_args().n

    decoder = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())
    topic = schemas.DEFAULT_TOPICS.payments_completed
    decoded = decoder.decode(PAYMENT, topic)
    assert isinstance(decoded, schemas.PaymentCompletedEvent)
    assert decoder.decode(BINARY_VALUE, topic, BINARY_HEADERS) == decoded
    payment, now = decoded.data, decoded.time
    session_id = schemas.session_id_for_payment(payment.payment_id)
    expires_at = now + timedelta(minutes=15)
    print(f"payload: payment.completed, {len(PAYMENT)} bytes; {n:,} events per round")

    def decode(count: int) -> None:
        for _ in range(count):
            decoder.decode(PAYMENT, topic)

    def decode_with_header(count: int) -> None:
        for _ in range(count):
            decoder.decode(PAYMENT, topic, STRUCTURED_HEADERS)

    def decode_binary(count: int) -> None:
        for _ in range(count):
            decoder.decode(BINARY_VALUE, topic, BINARY_HEADERS)

    def validator_alone(count: int) -> None:
        validate = schemas.PaymentCompletedEvent.__pydantic_validator__.validate_json
        for _ in range(count):
            validate(PAYMENT)

    def created() -> schemas.SessionCreated:
        return schemas.SessionCreated(
            session_id=session_id,
            customer_id=payment.customer_id,
            payment_id=payment.payment_id,
            session_type=payment.session_type,
            created_at=now,
            expires_at=expires_at,
        )

    def create_build_encode(count: int) -> None:
        for _ in range(count):
            event = schemas.SessionCreatedEvent.build(created(), causation_id=decoded.id, time=now)
            schemas.encode(event)

    data = created()

    def build(count: int) -> None:
        for _ in range(count):
            schemas.SessionCreatedEvent.build(data, causation_id=decoded.id, time=now)

    event = schemas.SessionCreatedEvent.build(data, causation_id=decoded.id, time=now)

    def encode(count: int) -> None:
        for _ in range(count):
            schemas.encode(event)

    def construct_data(count: int) -> None:
        for _ in range(count):
            schemas.SessionCreated.model_construct(
                session_id=session_id,
                customer_id=payment.customer_id,
                payment_id=payment.payment_id,
                session_type=payment.session_type,
                created_at=now,
                expires_at=expires_at,
            )

    def validate_data(count: int) -> None:
        for _ in range(count):
            created()

    rate("decode: Decoder.decode(payment.completed)", n, decode)
    rate("  floor: the model's JSON validator alone", n, validator_alone)
    rate("  structured, with its content-type header", n, decode_with_header)
    rate("  binary mode (ce_* headers, data as the value)", n, decode_binary)
    rate("encode: SessionCreated(...) + build + encode", n, create_build_encode)
    rate("  build (id, subject, envelope) alone", n, build)
    rate("  encode alone", n, encode)
    rate("  data by validation: SessionCreated(...)", n, validate_data)
    rate("  data by model_construct (skips UTC normalisation: avoid)", n, construct_data)
    print(f"output: {schemas.encode(event).decode()}")


if __name__ == "__main__":
    main()
