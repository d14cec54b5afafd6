"""The soak: after the latency phase, the same running service under a steady load for minutes
(issue 24: 1,000 payments/s for 10 minutes), produced as the latency phase produces, with each
instance's RSS sampled every second, and whether it stays flat.

An instance is a process of `fulfillment run` (it forks one per CPU), with its own descendants
(bench/procstats.py, `instance_rss_bytes`). Flat is judged as tests/proof/soak.py judges it: the
least-squares slope of RSS over the second half of the soak, the first half being warm-up (the
arenas reach their high-water mark and the caches fill in minutes, bench/README.md).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

from bench.latency import Latency, steady_load
from bench.latency_phase import positioned_reader
from bench.procstats import Polling, instance_rss_bytes
from service.config.settings import Settings

MIB = 1024 * 1024
# Issue 24's target: RSS flat over a 10-minute soak at 1,000/s.
SOAK_RATE = 1_000.0
SOAK_SECONDS = 600.0
FLAT_MIB_PER_MINUTE = 1.0  # every instance's slope below this
WARMUP_SHARE = 0.5  # of the soak, left out of the slope
SAMPLE_EVERY = 1.0  # seconds
PROGRESS_EVERY = 60  # samples between two progress lines
LOT_SECONDS = 10.0  # payments built ahead, this many seconds of them at a time


@dataclass(frozen=True, slots=True)
class RssSample:
    at: float  # epoch seconds
    by_instance: dict[int, int]  # the instance's first pid -> bytes


@dataclass(frozen=True, slots=True)
class Trend:
    """One instance over the soak: RSS first, at the warm-up's end, last and at its peak
    (bytes), and the slope over the second half (MiB per minute; None under two samples)."""

    instance: int  # 1, 2, ... in pid order: 1 is the process the bench started
    pid: int
    first: int
    at_half: int
    last: int
    peak: int
    slope: float | None

    @property
    def flat(self) -> bool:
        return self.slope is not None and self.slope < FLAT_MIB_PER_MINUTE


@dataclass(frozen=True, slots=True)
class Soak:
    latency: Latency
    samples: list[RssSample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Seconds of payments sent, at the soak's own rate (the schedule never runs early)."""
        return self.latency.sent / self.latency.target_rate

    @property
    def warmup(self) -> float:
        return self.seconds * WARMUP_SHARE

    def trends(self) -> list[Trend]:
        began = self.latency.began
        return trends(self.samples, began + self.warmup, began + self.latency.send_seconds)

    def shortfalls(self) -> list[str]:
        """Why this soak cannot stand for the target's, whatever its RSS did."""
        lat, out = self.latency, []
        if self.seconds < SOAK_SECONDS:
            out.append(f"{self.seconds:.0f} s, not {SOAK_SECONDS:.0f}")
        if lat.achieved_rate < 0.98 * SOAK_RATE:
            out.append(f"at {lat.achieved_rate:,.0f}/s")
        if lat.received < lat.sent:
            out.append(f"{lat.received:,} of {lat.sent:,} outcomes")
        return out


def write_samples(soak: Soak, path: Path) -> None:
    """Every sample as CSV: seconds since the first send, then MiB by instance."""
    pids = [t.pid for t in soak.trends()]
    lines = ["seconds," + ",".join(f"instance {n}" for n in range(1, len(pids) + 1))]
    for sample in soak.samples:
        sizes = (sample.by_instance.get(pid) for pid in pids)
        cells = ("" if size is None else f"{size / MIB:.2f}" for size in sizes)
        lines.append(f"{sample.at - soak.latency.began:.1f}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def slope_mib_per_minute(points: Sequence[tuple[float, int]]) -> float | None:
    """The least-squares slope of (seconds, bytes) points in MiB per minute; None for fewer than
    two distinct times."""
    if len({at for at, _ in points}) < 2:
        return None
    fit = statistics.linear_regression(
        [at / 60 for at, _ in points], [size / MIB for _, size in points]
    )
    return fit.slope


def trends(samples: Sequence[RssSample], since: float, until: float) -> list[Trend]:
    """Each instance seen in `samples`, with its slope over the samples from `since` to
    `until` (epoch seconds) and its figures over all of them."""
    out = []
    pids = sorted({pid for sample in samples for pid in sample.by_instance})
    for number, pid in enumerate(pids, start=1):
        series = [(s.at, s.by_instance[pid]) for s in samples if pid in s.by_instance]
        judged = [(at, size) for at, size in series if since <= at <= until]
        sizes = [size for _, size in series]
        out.append(
            Trend(
                instance=number,
                pid=pid,
                first=sizes[0],
                at_half=judged[0][1] if judged else sizes[-1],
                last=sizes[-1],
                peak=max(sizes),
                slope=slope_mib_per_minute([(at - since, size) for at, size in judged]),
            )
        )
    return out


def verdict(soak: Soak | None) -> tuple[str, bool | None]:
    """The target's figure (the steepest instance's slope) and whether it is met; None when no
    soak ran."""
    if soak is None:
        return "not run", None
    slopes = [t.slope for t in soak.trends()]
    if not slopes or None in slopes:
        return "no slope", False
    steepest = max(s for s in slopes if s is not None)
    flat = all(t.flat for t in soak.trends())
    return f"{steepest:+.2f} MiB/min", flat and not soak.shortfalls()


class RssSampler(Polling):
    """Every `every` seconds, each instance's RSS, until stopped or the service is gone."""

    task_name = "rss-sampler"

    def __init__(self, pid: int, step: Callable[[str], None], every: float = SAMPLE_EVERY) -> None:
        self.pid, self.step, self.every = pid, step, every
        self.samples: list[RssSample] = []
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        began = time.monotonic()
        while (sizes := instance_rss_bytes(self.pid)) is not None:
            self.samples.append(RssSample(time.time(), sizes))
            if len(self.samples) % PROGRESS_EVERY == 0:
                mib = ", ".join(f"{size / MIB:.0f}" for _, size in sorted(sizes.items()))
                self.step(
                    f"soak: {len(self.samples) * self.every:.0f} s, RSS MiB by instance: {mib}"
                )
            # On an absolute schedule: reading /proc takes time of its own.
            ticks = (time.monotonic() - began) // self.every + 1
            await asyncio.sleep(max(0.0, began + ticks * self.every - time.monotonic()))


async def soak_phase(
    kafka: str,
    settings: Settings,
    pid: int,
    *,
    rate: float,
    seconds: float,
    seed: int,
    watching: Callable[[str], AbstractAsyncContextManager[None]],
    step: Callable[[str], None],
) -> Soak:
    """`rate` payments/s for `seconds` to the running service whose first process is `pid`."""
    step(f"soak: {rate:,.0f} payments/s for {seconds:.0f} s, RSS every {SAMPLE_EVERY:.0f} s")
    sampler = RssSampler(pid, step)
    sampler.start()
    try:
        async with watching("soak"), positioned_reader(kafka, settings) as reader:
            lat = await steady_load(
                kafka,
                settings.topic_payments,
                reader,
                rate=rate,
                seconds=seconds,
                seed=seed,
                lot=max(1, round(rate * LOT_SECONDS)),
            )
    finally:
        await sampler.stop()
    soak = Soak(lat, sampler.samples)
    slopes = ", ".join("n/a" if t.slope is None else f"{t.slope:+.2f}" for t in soak.trends())
    step(f"soak: RSS slope over the second half, MiB/min by instance: {slopes}")
    return soak
