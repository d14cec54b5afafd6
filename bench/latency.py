"""Latency under a steady load: payments produced at a fixed rate in small bursts, each one's
send time recorded, and the time its outcome reaches a consumer of `sessions.events`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import AIOKafkaProducer

from bench.kafka_io import OutcomeReader
from bench.service_api import payments_only

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
) -> Latency:
    """`reader` must already be positioned at the end of sessions.events. Waits for the last
    outcomes until none has come for `wait` seconds; the missing ones are reported, not raised."""
    count = int(rate * seconds)
    messages = payments_only(
        count,
        max(1, count // 4),
        start=datetime.now(UTC),
        seed=seed,
        topic=topic,
        spacing=timedelta(seconds=1 / rate),
    )
    ids = [str(orjson.loads(m.value)["data"]["payment_id"]) for m in messages]
    sent: dict[str, float] = {}
    arrived: dict[str, tuple[float, float]] = {}  # payment id -> (received, record timestamp)
    collector = asyncio.create_task(_collect(reader, sent, arrived), name="outcome-collector")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        per_tick = max(1, round(rate * TICK))
        delivered = []
        began = time.monotonic()
        for burst, first in enumerate(range(0, count, per_tick)):
            delay = began + burst * per_tick / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for message, payment_id in zip(
                messages[first : first + per_tick], ids[first : first + per_tick], strict=True
            ):
                sent[payment_id] = time.time()
                delivered.append(await producer.send(topic, value=message.value, key=message.key))
        send_seconds = time.monotonic() - began
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
    )


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
