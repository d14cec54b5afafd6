"""What the machine spends: a process's resident memory, and CPU seconds by who spent them
(the service, PostgreSQL, Kafka, this benchmark, anything else), read from /proc (Linux)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a live process; None once it is gone."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def _cpu_and_name(pid: str) -> tuple[str, float, int] | None:
    """(name, CPU seconds, parent pid) of a process; None once it is gone."""
    try:
        stat = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may hold spaces: the fields start after the last ')'.
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / _TICK, int(fields[1])  # utime + stime


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    at: float  # time.monotonic()
    by_pid: dict[int, tuple[str, float, int]]
    machine_busy: float  # seconds of all cores busy since boot
    machine_total: float


def cpu_snapshot(now: float) -> CpuSnapshot:
    by_pid = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _cpu_and_name(entry.name)
            if found:
                by_pid[int(entry.name)] = found
    jiffies = [int(x) for x in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    return CpuSnapshot(now, by_pid, (sum(jiffies) - idle) / _TICK, sum(jiffies) / _TICK)


def cpu_between(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """Cores used on average between the snapshots, by group, plus the machine's busy fraction.

    Processes that ended in between are missed (short-lived ones land in no group); ones that
    started in between count in full, which is right for the service's own database sessions."""
    seconds = end.at - start.at
    groups = {"service": 0.0, "postgres": 0.0, "kafka": 0.0, "bench": 0.0, "other": 0.0}
    for pid, (name, cpu, parent) in end.by_pid.items():
        before = start.by_pid.get(pid)
        spent = cpu - (before[1] if before else 0.0)
        groups[_group(pid, name, parent, end.by_pid)] += spent
    used = {k: v / seconds for k, v in groups.items()}
    total = end.machine_total - start.machine_total
    used["machine_busy_fraction"] = (end.machine_busy - start.machine_busy) / total if total else 0
    return used


def cores_by_process(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """Cores used on average between the snapshots by each busy service process (one per
    instance, numbered in pid order), by its idle ones together, then by the other groups."""
    seconds = end.at - start.at
    busy: list[float] = []
    idle = 0.0
    groups = {"postgres": 0.0, "kafka": 0.0, "bench": 0.0, "other": 0.0}
    for pid, (name, cpu, parent) in sorted(end.by_pid.items()):
        before = start.by_pid.get(pid)
        spent = (cpu - (before[1] if before else 0.0)) / seconds
        group = _group(pid, name, parent, end.by_pid)
        if group != "service":
            groups[group] += spent
        elif spent >= 0.01:
            busy.append(spent)
        else:
            idle += spent  # multiprocessing's resource tracker
    instances = {f"service {i}": cores for i, cores in enumerate(busy, start=1)}
    return instances | {"service, idle processes": idle} | groups


def _group(pid: int, name: str, parent: int, by_pid: dict[int, tuple[str, float, int]]) -> str:
    if name.startswith("postgres") or name.startswith("pgbench"):
        return "postgres"
    if name == "java":
        return "kafka"
    if pid == os.getpid():
        return "bench"
    # The bench's only other child is `fulfillment run`; its own children (more instances
    # with FULFILLMENT_PROCESSES > 1) are the service too.
    for _ in range(4):
        if parent == os.getpid():
            return "service"
        found = by_pid.get(parent)
        if found is None:
            break
        parent = found[2]
    return "other"


def tree_rss_bytes(pid: int) -> int | None:
    """VmRSS of a live process plus all its descendants; None once the process is gone."""
    instances = instance_rss_bytes(pid)
    return None if instances is None else sum(instances.values())


def instance_rss_bytes(pid: int) -> dict[int, int] | None:
    """VmRSS by instance of the service whose first process is `pid`: that process on its own,
    and each of its children (the instances `fulfillment run` forks) with all their descendants,
    by the child's pid. They add up to the whole tree's. None once `pid` is gone."""
    own = rss_bytes(pid)
    if own is None:
        return None
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = _cpu_and_name(entry.name)
            if found:
                parents[int(entry.name)] = found[2]
    out = {pid: own}
    for child in (c for c, parent in parents.items() if parent == pid):
        total, frontier = 0, {child}
        while frontier:
            total += sum(rss_bytes(p) or 0 for p in frontier)
            frontier = {c for c, parent in parents.items() if parent in frontier}
        out[child] = total
    return out


class Polling:
    """`_poll` run as a task from `start` until `stop`, or until it returns."""

    task_name = "polling"
    _task: asyncio.Task[None] | None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name=self.task_name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class RssWatch(Polling):
    """Polls the VmRSS of a process and its descendants every `interval` seconds until it ends
    or `stop` is called."""

    task_name = "rss-watch"
    pid: int
    interval: float = 0.2
    peak: int = 0
    samples: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _poll(self) -> None:
        while (rss := tree_rss_bytes(self.pid)) is not None:
            self.peak = max(self.peak, rss)
            self.samples += 1
            await asyncio.sleep(self.interval)
