"""The latency phase: the running service under a steady load at each rate in turn, each with
its latency budget (bench/stages.py) from the records' timestamps and the service's histograms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from bench.kafka_io import OutcomeReader
from bench.latency import Latency, steady_load
from bench.stages import Stage, batches, budget, scrape
from service.config.settings import Settings

WARM_UP_RATE = 200.0
WARM_UP_SECONDS = 3.0


async def latency_phase(
    kafka: str,
    settings: Settings,
    port: int,
    *,
    rates: Sequence[float],
    seconds: float,
    seed: int,
    watching: Callable[[str], AbstractAsyncContextManager[None]],
    step: Callable[[str], None],
    warm_up: bool = False,
) -> list[tuple[Latency, list[Stage]]]:
    """Each rate for `seconds`; `port` serves the service's /metrics. `warm_up`: first a few
    seconds not counted (a service just started has cold connections, and no relay leads yet).
    Raises OSError when /metrics does not answer."""
    if warm_up:
        step(f"latency: warming up at {WARM_UP_RATE:,.0f}/s for {WARM_UP_SECONDS:.0f} s")
        await _one(kafka, settings, rate=WARM_UP_RATE, seconds=WARM_UP_SECONDS, seed=seed - 1)
    out = []
    for index, rate in enumerate(rates):
        step(f"latency: {rate:,.0f} payments/s for {seconds:.0f} s")
        before = await scrape(port)
        async with watching(f"latency {rate:,.0f}/s"):
            lat = await _one(kafka, settings, rate=rate, seconds=seconds, seed=seed + index)
        after = await scrape(port)
        count, events, cpu = batches(before, after)
        step(
            f"latency: {count:,.0f} batches of {events / max(count, 1):,.1f} events on average; "
            f"service CPU {cpu / max(events, 1) * 1e6:,.0f} us per event"
        )
        out.append((lat, budget(lat, before, after)))
    return out


async def _one(
    kafka: str, settings: Settings, *, rate: float, seconds: float, seed: int
) -> Latency:
    async with positioned_reader(kafka, settings) as reader:
        return await steady_load(
            kafka, settings.topic_payments, reader, rate=rate, seconds=seconds, seed=seed
        )


@asynccontextmanager
async def positioned_reader(kafka: str, settings: Settings) -> AsyncIterator[OutcomeReader]:
    """A reader of sessions.events from its end, as `steady_load` wants it."""
    reader = OutcomeReader(kafka, settings.topic_sessions)
    await reader.start(partitions=settings.topic_partitions, from_end=True)
    try:
        yield reader
    finally:
        await reader.stop()
