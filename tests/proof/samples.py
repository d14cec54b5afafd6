"""What the soak samples every few seconds, from outside the service: each instance's RSS (its
whole process group, from /proc) and what the service's own metrics port says of consumer lag and
the outbox (`fulfillment_consumer_lag`, `fulfillment_outbox_oldest_age_seconds`,
`fulfillment_outbox_backlog`: service/observe/metrics.py), and the least-squares slope of RSS.

An instance (`fulfillment run`) binds its port when asked for port 0, so the sampler finds it as
the listening socket of the instance's first process: its file descriptors, in /proc/<pid>/fd,
matched against /proc/net/tcp."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.proof.instances import Instance, group_rss_kib, now

LISTEN = "0A"  # a socket's state in /proc/net/tcp


@dataclass(frozen=True)
class Metrics:
    """One instance's answer: its lag summed over its partitions, the outbox as it last read it."""

    lag: float = 0.0
    outbox_age: float | None = None
    outbox_rows: float | None = None


@dataclass(frozen=True)
class Sample:
    at: datetime
    rss_kib: dict[str, int]  # instance name -> RSS of its process group
    lag: float | None  # input messages no instance has fetched yet, over every instance
    outbox_age: float | None  # seconds: the oldest unpublished outbox row, as any instance says
    outbox_rows: float | None


def read_metrics(text: str) -> Metrics:
    """The lag and outbox figures of one /metrics page (Prometheus text format)."""
    lag, age, rows = 0.0, None, None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fulfillment_consumer_lag":
                lag += sample.value
            elif sample.name == "fulfillment_outbox_oldest_age_seconds":
                age = sample.value
            elif sample.name == "fulfillment_outbox_backlog":
                rows = sample.value
    return Metrics(lag, age, rows)


def listening_ports(tcp_table: str, inodes: set[int]) -> list[int]:
    """The local ports of the listening sockets among `inodes`, from a /proc/net/tcp table."""
    ports = []
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == LISTEN and int(fields[9]) in inodes:
            ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = fd.readlink().name
                if target.startswith("socket:["):
                    inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def metrics_port(pid: int) -> int | None:
    """The port `pid` listens on (its HTTP server), if it listens yet."""
    inodes = socket_inodes(pid)
    if not inodes:
        return None
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return None
    ports = listening_ports(table, inodes)
    return ports[0] if ports else None


def slope_per_minute(points: Sequence[tuple[datetime, float]]) -> float | None:
    """The least-squares slope of `points`, in their unit per minute (None under 3 points)."""
    if len(points) < 3:
        return None
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 60 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


class Sampler:
    """Every `every` seconds, a Sample of `instances` into `samples`, until cancelled."""

    def __init__(self, instances: list[Instance], every: float) -> None:
        self.instances, self.every = instances, every
        self.samples: list[Sample] = []
        self._ports: dict[tuple[str, int], int] = {}  # (instance, its start) -> port

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.every / 2))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                self.samples.append(await self.sample(session))
                await asyncio.sleep(self.every)

    async def sample(self, session: aiohttp.ClientSession) -> Sample:
        at, rss, answers = now(), {}, []
        for instance in self.instances:
            if not instance.alive or instance.process is None:
                continue
            if (found := group_rss_kib(instance.process.pid)) is not None:
                rss[instance.name] = found
            if (metrics := await self._scrape(session, instance)) is not None:
                answers.append(metrics)
        ages = [m.outbox_age for m in answers if m.outbox_age is not None]
        rows = [m.outbox_rows for m in answers if m.outbox_rows is not None]
        return Sample(
            at,
            rss,
            sum(m.lag for m in answers) if answers else None,
            max(ages) if ages else None,
            max(rows) if rows else None,
        )

    async def _scrape(self, session: aiohttp.ClientSession, instance: Instance) -> Metrics | None:
        assert instance.process is not None
        key = (instance.name, instance.starts)
        if key not in self._ports:
            port = metrics_port(instance.process.pid)
            if port is None:
                return None
            self._ports[key] = port
        try:
            async with session.get(f"http://127.0.0.1:{self._ports[key]}/metrics") as answer:
                return read_metrics(await answer.text())
        except (aiohttp.ClientError, TimeoutError):
            return None
