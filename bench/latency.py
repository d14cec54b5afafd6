"""Latency under a steady load: payments produced at a fixed rate in small bursts, each one's
send time recorded, and the time its outcome reaches a consumer of `sessions.events`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.kafka_io import OutcomeReader
from bench.service_api import Message, payments_only

TICK = 0.005  # seconds between bursts: 10 payments a burst at 2,000/s


@dataclass(frozen=True, slots=True)
class Latency:
    target_rate: float
    sent: int
    send_seconds: float
    to_consumer_ms: list[float]  # sorted: send -> outcome received by the bench's consumer
    to_relay_ms: list[float]  # sorted: send -> outcome record's CreateTime (the relay's send)
    relay_to_consumer_ms: list[float]  # sorted: outcome record's CreateTime -> received
    windows: list[tuple[float, float]]  # (p99, max) to the consumer, per `window` s of sending
    window: float
    began: float  # the first send, epoch seconds

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.send_seconds

    @property
    def received(self) -> int:
        return len(self.to_consumer_ms)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank; NaN for no data."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


async def steady_load(
    bootstrap: str,
    topic: str,
    reader: OutcomeReader,
    *,
    rate: float,
    seconds: float,
    seed: int,
    wait: float = 30.0,
    lot: int | None = None,
) -> Latency:
    """`reader` must already be positioned at the end of sessions.events. Waits for the last
    outcomes until none has come for `wait` seconds; the missing ones are reported, not raised.
    `lot`: build the payments that many at a time, each lot over its own customers and the next
    one in a thread while this one is sent (a payment takes about 4 KiB here, so ten minutes at
    1,000/s built first would hold 2.5 GiB); None: all of them first, over a quarter as many
    customers."""
    count = int(rate * seconds)
    per_tick = max(1, round(rate * TICK))
    size = max(per_tick, count if lot is None else lot // per_tick * per_tick)
    sent: dict[str, float] = {}
    arrived: dict[str, tuple[float, float]] = {}  # payment id -> (received, record timestamp)
    collector = asyncio.create_task(_collect(reader, sent, arrived), name="outcome-collector")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        lots = payment_lots(count, size, topic, rate=rate, seed=seed, split=lot is not None)
        async with aclosing(lots):
            began, send_seconds, delivered = await _send_on_schedule(
                producer, topic, lots, sent, rate=rate, per_tick=per_tick
            )
        # Not gather() over every delivery here: scheduling 120,000 callbacks blocks this loop
        # for most of a second, and with it the producer's last sends and the collector's
        # clocks, which once showed as a 750 ms "stall" in the last window. Errors after.
        await producer.flush()
        await _wait_for_all(arrived, count, wait)
        await asyncio.gather(*delivered)
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        await producer.stop()
    window = 2.0
    return Latency(
        target_rate=rate,
        sent=count,
        send_seconds=send_seconds,
        to_consumer_ms=sorted((a[0] - sent[p]) * 1000 for p, a in arrived.items()),
        to_relay_ms=sorted((a[1] - sent[p]) * 1000 for p, a in arrived.items()),
        relay_to_consumer_ms=sorted((a[0] - a[1]) * 1000 for a in arrived.values()),
        windows=_windows(sent, arrived, window),
        window=window,
        began=began,
    )


async def _send_on_schedule(
    producer: AIOKafkaProducer,
    topic: str,
    lots: AsyncIterator[Payments],
    sent: dict[str, float],
    *,
    rate: float,
    per_tick: int,
) -> tuple[float, float, list[asyncio.Future[Any]]]:
    """Sends `per_tick` payments every `per_tick / rate` seconds on an absolute schedule,
    recording each one's send time in `sent`. Returns the first send's time (epoch seconds),
    the seconds from it to the last send, and the deliveries not yet checked."""
    delivered: list[asyncio.Future[Any]] = []
    index, began, began_at = 0, 0.0, 0.0
    async for payments in lots:
        if not began:
            began, began_at = time.monotonic(), time.time()
        else:
            delivered = _pending(delivered)
        for first in range(0, len(payments), per_tick):
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for message, payment_id in payments[first : first + per_tick]:
                sent[payment_id] = time.time()
                delivered.append(await producer.send(topic, value=message.value, key=message.key))
                index += 1
    return began_at, time.monotonic() - began, delivered


Payments = list[tuple[Message, str]]  # each with its payment id


def _payments(size: int, topic: str, *, start: datetime, rate: float, seed: int) -> Payments:
    messages = payments_only(
        size,
        max(1, size // 4),
        start=start,
        seed=seed,
        topic=topic,
        spacing=timedelta(seconds=1 / rate),
    )
    return [(m, str(orjson.loads(m.value)["data"]["payment_id"])) for m in messages]


async def payment_lots(
    count: int, size: int, topic: str, *, rate: float, seed: int, split: bool
) -> AsyncGenerator[Payments]:
    """`count` payments, `size` at a time; their business times follow the schedule. `split`:
    each lot from its own seed (the same seed would repeat the payment and event ids)."""
    start = datetime.now(UTC)
    sizes = [min(size, count - first) for first in range(0, count, size)]

    def build(number: int) -> Payments:
        when = start + timedelta(seconds=number * size / rate)
        own = _lot_seed(seed, number) if split else seed
        return _payments(sizes[number], topic, start=when, rate=rate, seed=own)

    ahead: asyncio.Future[Payments] | None = None
    for number in range(len(sizes)):
        current = await ahead if ahead else build(number)
        if number + 1 < len(sizes):
            ahead = asyncio.ensure_future(asyncio.to_thread(build, number + 1))
        yield current


def _pending(delivered: list[asyncio.Future[Any]]) -> list[asyncio.Future[Any]]:
    """The deliveries not acknowledged yet; raises the error of one that failed. Between lots,
    so that a long run does not hold every acknowledgement until its end."""
    pending = []
    for future in delivered:
        if future.done():
            future.result()
        else:
            pending.append(future)
    return pending


def _lot_seed(seed: int, number: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest)


def _windows(
    sent: dict[str, float], arrived: dict[str, tuple[float, float]], window: float
) -> list[tuple[float, float]]:
    """Where in the run the slow ones were: p99 and max for each `window` seconds of sending."""
    if not sent:
        return []
    began = min(sent.values())
    buckets: dict[int, list[float]] = {}
    for payment_id, (received, _) in arrived.items():
        at = sent[payment_id]
        buckets.setdefault(int((at - began) // window), []).append((received - at) * 1000)
    out = []
    for index in range(max(buckets, default=-1) + 1):
        ordered = sorted(buckets.get(index, []))
        out.append((percentile(ordered, 99), ordered[-1] if ordered else math.nan))
    return out


async def _collect(
    reader: OutcomeReader, sent: dict[str, float], arrived: dict[str, tuple[float, float]]
) -> None:
    while True:
        for outcome in await reader.fetch(timeout_ms=50):
            payment_id = outcome.payment_id
            if payment_id in sent and payment_id not in arrived:
                arrived[payment_id] = (outcome.arrived, outcome.timestamp)


async def _wait_for_all(arrived: dict[str, tuple[float, float]], count: int, wait: float) -> None:
    seen, changed = len(arrived), time.monotonic()
    while len(arrived) < count and time.monotonic() - changed < wait:
        await asyncio.sleep(0.1)
        if len(arrived) != seen:
            seen, changed = len(arrived), time.monotonic()
