"""How many CPUs this process may use: `FULFILLMENT_PROCESSES=auto` runs one instance each.

The CPU affinity mask (taskset, cpuset) caps it, and so does a CFS quota (a container's CPU
limit: cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), whichever is lower.
A quota of 1.5 CPUs gives 1: each instance keeps one core busy, and a second one on half a
core would spend its time throttled, holding its partitions' batches up (latency), not adding
throughput.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(
    *,
    affinity: set[int] | None = None,
    proc_cgroup: Path = PROC_CGROUP,
    cgroup_root: Path = CGROUP_ROOT,
) -> int:
    """At least 1. Unreadable or absent cgroup files mean no quota (not an error)."""
    cpus = len(os.sched_getaffinity(0) if affinity is None else affinity)
    try:
        membership = proc_cgroup.read_text()
    except OSError:
        membership = ""
    quota = cpu_quota(membership, cgroup_root)
    if quota is not None:
        cpus = min(cpus, int(quota))
    return max(1, cpus)


def cpu_quota(membership: str, cgroup_root: Path) -> float | None:
    """The lowest CFS quota, in CPUs, on this process's cgroup or any of its ancestors; None when
    there is none. `membership` is /proc/self/cgroup: `0::/path` for v2, `N:cpu,cpuacct:/path`
    for a v1 hierarchy with the cpu controller (which, on a hybrid host, holds the quota)."""
    limits: list[float] = []
    for line in membership.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers:
            for folder in _up_from(cgroup_root, path):
                limits.extend(_v2_limit(folder))
        elif "cpu" in controllers.split(","):
            mount = cgroup_root / controllers
            if not mount.is_dir():
                mount = cgroup_root / "cpu"
            for folder in _up_from(mount, path):
                limits.extend(_v1_limit(folder))
    return min(limits) if limits else None


def _up_from(root: Path, path: str) -> Iterator[Path]:
    # In a container /proc/self/cgroup may name the host's path while the container sees its
    # own cgroup at the mount root: walking up to the root finds it either way.
    folder = root / path.strip("/")
    while True:
        yield folder
        if folder == root or root not in folder.parents:
            return
        folder = folder.parent


def _v2_limit(folder: Path) -> list[float]:
    fields = _read(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return []
    return _ratio(fields[0], fields[1])


def _v1_limit(folder: Path) -> list[float]:
    return _ratio(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))


def _ratio(quota: str, period: str) -> list[float]:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return []
    return [q / p] if q > 0 and p > 0 else []  # v1 writes -1 for no quota


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
