"""The drain: start the service on a topic already holding N payments and time it until every
payment has its outcome (session.created or session.rejected) on `sessions.events`.

While it runs the bench only asks the broker for the topic's end offsets (no reading, so it
takes no CPU from the service); once N records are there it reads them, and the times come from
the records' own timestamps (stamped by the relay's producer as it sends), not from polling.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass

from bench.kafka_io import OutcomeReader
from bench.procstats import RssWatch, cores_by_process, cpu_between, cpu_snapshot
from bench.service_proc import ServiceProcess


class Aborted(Exception):
    """The run cannot give a figure (a stall, the service died); the message says which."""


@dataclass(frozen=True, slots=True)
class Drain:
    n: int
    started_at: float  # epoch seconds, the service's exec
    first_outcome: float
    last_outcome: float
    types: dict[str, int]
    peak_rss: int
    cpu: dict[str, float]  # average cores used, by group, from the first outcome to the last
    per_bucket: list[int]  # outcomes per `bucket` seconds since started_at
    bucket: int
    stamps: list[float]  # each payment's first outcome, epoch seconds (for the plots)
    cores_by_process: dict[str, float]  # each service instance, then the other groups

    @property
    def seconds(self) -> float:
        return self.last_outcome - self.started_at

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def startup(self) -> float:
        return self.first_outcome - self.started_at

    @property
    def steady_rate(self) -> float:
        span = self.last_outcome - self.first_outcome
        return self.n / span if span > 0 else math.inf


async def drain(
    service: ServiceProcess, reader: OutcomeReader, n: int, *, stall: float
) -> tuple[Drain, RssWatch]:
    """Starts `service` and waits for `n` distinct payments' outcomes. Returns the figures and
    the RSS watch (left running for the phases after). Raises Aborted on a stall of `stall`
    seconds or if the service exits."""
    before = cpu_snapshot(time.monotonic())
    await service.start()
    watch = RssWatch(service.pid)
    watch.start()
    seen, changed = 0, time.monotonic()
    payments: set[str] = set()
    types: Counter[str] = Counter()
    stamps: list[float] = []
    steady = after = None
    while len(payments) < n:
        if service.exit_code is not None:
            raise Aborted(f"the service exited with code {service.exit_code} during the drain")
        total = await reader.total()
        now = time.monotonic()
        if total != seen:
            seen, changed = total, now
            # CPU is counted from the first outcome: the startup before it is mostly waiting.
            steady = steady or cpu_snapshot(now)
        elif now - changed > stall:
            raise Aborted(
                f"drain stalled: {total:,} records on sessions.events ({len(payments):,} of "
                f"{n:,} payments seen), none new for {stall:.0f} s"
            )
        if total - sum(types.values()) >= n - len(payments):
            # Enough records for the rest: stop the CPU clock at the first sight of them.
            after = after or cpu_snapshot(now)
            try:
                outcomes = await reader.read_to(await reader.end_offsets(), within=stall)
            except TimeoutError:
                raise Aborted(f"reading sessions.events took over {stall:.0f} s") from None
            for outcome in outcomes:
                types[outcome.type] += 1
                if outcome.payment_id is not None and outcome.payment_id not in payments:
                    payments.add(outcome.payment_id)
                    stamps.append(outcome.timestamp)
            continue
        await asyncio.sleep(0.2)
    after = after or cpu_snapshot(time.monotonic())
    first, last = min(stamps), max(stamps)
    bucket = max(1, math.ceil((last - service.started_at) / 40))
    per_bucket = [0] * (int((last - service.started_at) // bucket) + 1)
    for stamp in stamps:
        per_bucket[max(0, int((stamp - service.started_at) // bucket))] += 1
    counted_from = steady if steady and steady.at < after.at else before
    figures = Drain(
        n=n,
        started_at=service.started_at,
        first_outcome=first,
        last_outcome=last,
        types=dict(types),
        peak_rss=watch.peak,
        cpu=cpu_between(counted_from, after),
        per_bucket=per_bucket,
        bucket=bucket,
        stamps=sorted(stamps),
        cores_by_process=cores_by_process(counted_from, after),
    )
    return figures, watch
