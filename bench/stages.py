"""The latency budget: where an event's time goes between its produce and its outcome reaching a
subscriber, stage by stage, from timestamps the bench can read.

From the records (per event, exact): the bench's send (the input record's CreateTime, stamped
by its producer in the same call), the output record's CreateTime (stamped by the relay's
producer as it builds the batch) and the bench's receive time. From the service's own
histograms, scraped from /metrics before and after the phase (the difference is the phase's):
the input record's age at its batch's decision start, the decision to its commit, an offset
commit, and the relay's wake-up (a commit that wrote outbox rows to the leader's next send, one
observation per transaction rather than per event).
"""

from __future__ import annotations

import asyncio
import math
import socket
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench.latency import Latency, percentile

# The service's histograms of a stage, by the name of the stage they measure.
STAGE_METRICS: Mapping[str, str] = {
    "input fetch": "fulfillment_batch_age_seconds",
    "decide": "fulfillment_decide_seconds",
    "offset commit": "fulfillment_offset_commit_seconds",
    "relay wake": "fulfillment_relay_wake_seconds",
}

Buckets = dict[float, float]  # upper bound (seconds) -> cumulative count
BATCHES = "fulfillment_batch_events"  # its _count and _sum: batches, and events in them
CPU = "process_cpu_seconds"  # summed over the instances


def free_ports(count: int, start: int = 20_000, end: int = 60_000) -> int:
    """The first port of `count` consecutive ones free on 127.0.0.1 now (instance i of the
    service serves HTTP on port + i). Raises OSError when there are none."""
    for base in range(start, end, count + 1):
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise OSError(f"no {count} consecutive free ports in {start}-{end}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


async def scrape(port: int) -> dict[str, Buckets]:
    """The stage histograms' buckets as the service serves them now, and under BATCHES the
    batches' count (key 0) and events (key 1). Raises OSError when it does not answer."""
    text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    wanted = set(STAGE_METRICS.values())
    out: dict[str, Buckets] = {}
    for family in text_string_to_metric_families(text):
        if family.name in wanted:
            out[family.name] = {
                float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")
            }
        elif family.name == BATCHES:
            values = {s.name: s.value for s in family.samples}
            out[BATCHES] = {0: values[BATCHES + "_count"], 1: values[BATCHES + "_sum"]}
        elif family.name == CPU:
            out[CPU] = {0: sum(s.value for s in family.samples)}
    return out


def batches(before: dict[str, Buckets], after: dict[str, Buckets]) -> tuple[float, float, float]:
    """Batches between the two scrapes, events in them, and the service's CPU seconds."""
    b, a = before.get(BATCHES, {}), after.get(BATCHES, {})
    cpu = after.get(CPU, {}).get(0, 0.0) - before.get(CPU, {}).get(0, 0.0)
    return a.get(0, 0.0) - b.get(0, 0.0), a.get(1, 0.0) - b.get(1, 0.0), cpu


async def ready(port: int, *, within: float) -> None:
    """Waits for /readyz to answer 200 (every instance joined its group and reached its
    servers). Raises TimeoutError after `within` seconds."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    async with asyncio.timeout(within):
        while True:
            if await asyncio.to_thread(answers):
                return
            await asyncio.sleep(0.5)


def quantile(before: Buckets, after: Buckets, q: float) -> float:
    """The q-quantile (0..1) in seconds of what was observed between the two scrapes, linearly
    interpolated inside its bucket as PromQL's histogram_quantile does; NaN for no data."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the last finite bound: its value is all we know
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    source: str
    p50_ms: float
    p99_ms: float


def budget(lat: Latency, before: dict[str, Buckets], after: dict[str, Buckets]) -> list[Stage]:
    """The stages in path order, then the totals."""
    measured: dict[str, tuple[float, float]] = {}
    for stage, metric in STAGE_METRICS.items():
        b, a = before.get(metric, {}), after.get(metric, {})
        measured[stage] = (quantile(b, a, 0.5) * 1000, quantile(b, a, 0.99) * 1000)
    service = lat.to_relay_ms
    fetch = lat.relay_to_consumer_ms
    return [
        Stage("input fetch", "produce -> decision start (/metrics)", *measured["input fetch"]),
        Stage("decide", "decision start -> its commit (/metrics)", *measured["decide"]),
        Stage(
            "offset commit",
            "one batch's commit (/metrics); the next fetch waits for it",
            *measured["offset commit"],
        ),
        Stage(
            "relay wake",
            "decision commit -> the relay's send, per transaction (/metrics)",
            *measured["relay wake"],
        ),
        Stage(
            "send + subscriber fetch",
            "output CreateTime -> received",
            percentile(fetch, 50),
            percentile(fetch, 99),
        ),
        Stage(
            "service",
            "produce -> output CreateTime",
            percentile(service, 50),
            percentile(service, 99),
        ),
        Stage(
            "total",
            "produce -> received",
            percentile(lat.to_consumer_ms, 50),
            percentile(lat.to_consumer_ms, 99),
        ),
    ]


def format_budget(rate: float, stages: list[Stage]) -> list[str]:
    def ms(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.1f}"

    out = [f"             budget at {rate:,.0f}/s (ms)          p50     p99"]
    out.extend(
        f"               {s.name:<24} {ms(s.p50_ms):>7} {ms(s.p99_ms):>7}  {s.source}"
        for s in stages
    )
    return out
