"""A payments-only stream for the benchmarks' fast path: each payment its own payment_id, keyed by
customer, written as the simulate generator writes its events."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import schemas
from schemas.topics import PAYMENTS_COMPLETED
from service.simulation.stream import (
    PAYMENT_SOURCE,
    PRICES,
    Kind,
    Message,
    event,
    random_uuid,
)


def payments_only(
    n: int,
    customers: int,
    start: datetime,
    seed: int | None,
    *,
    topic: str = PAYMENTS_COMPLETED,
    spacing: timedelta = timedelta(milliseconds=1),
) -> list[Message]:
    """`n` payment.completed messages, each its own payment_id, from `customers` customers chosen
    at random, keyed by customer id, `spacing` apart from `start`: the benchmark's fast path."""
    if customers < 1 or n < 0:
        raise ValueError(f"need customers >= 1 and n >= 0, got {customers=} {n=}")
    rng = random.Random(seed)
    run = f"{rng.getrandbits(48):012x}"
    people = [str(random_uuid(rng)) for _ in range(customers)]
    keys = [p.encode() for p in people]
    out = []
    for i in range(n):
        who = rng.randrange(customers)
        time = start + spacing * i
        kind = rng.choice(("chat", "video", "diagnostic"))
        data = {
            "payment_id": f"pi_{run}_{i}",
            "customer_id": people[who],
            "amount_cents": PRICES[kind],
            "currency": "USD",
            "session_type": kind,
        }
        value = event(
            schemas.PAYMENT_COMPLETED, data, id=f"evt_{run}_{i}", source=PAYMENT_SOURCE, time=time
        )
        out.append(Message(topic, keys[who], value, time, Kind.PAYMENT))
    return out
