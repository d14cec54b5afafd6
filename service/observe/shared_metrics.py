"""What the service's port serves when several instances run from one `fulfillment run`: the sum
of every instance's metrics, read from the files prometheus-client writes in the shared
directory (service/bootstrap/metrics_dir.py).

Counters and histograms add up; each gauge says how in service/observe/metrics.py
(`multiprocess_mode`). prometheus-client's process collector reads one process only, so
`process_*` here is the sum over the instances (memory and CPU of the whole service, to compare
with its container's limits); the garbage-collector metrics, per process, are left out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from service.observe import metrics

# Of one process only: its start, and the limit of its file descriptors.
_FIRST_ONLY = frozenset({"process_start_time_seconds", "process_max_fds"})


class ProcessTree(Collector):
    """prometheus-client's process metrics summed over `pids()` (the first is the oldest)."""

    def __init__(self, pids: Callable[[], Sequence[int]]) -> None:
        self._pids = pids

    def collect(self) -> Iterable[Metric]:
        summed: dict[str, Metric] = {}
        for index, pid in enumerate(self._pids()):
            collector = ProcessCollector(pid=partial(int, pid), registry=None)
            for family in collector.collect():
                if family.name not in summed:
                    summed[family.name] = family
                elif family.name not in _FIRST_ONLY and index > 0:
                    total = summed[family.name]
                    total.samples = [
                        sample._replace(value=sample.value + more.value)
                        for sample, more in zip(total.samples, family.samples, strict=True)
                    ]
        return summed.values()


def shared_registry(directory: Path, pids: Callable[[], Sequence[int]]) -> CollectorRegistry:
    """Every instance's metrics summed, the build, the platform, and the processes' total."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(metrics.build)  # the same in every instance, and kept in memory only
    PlatformCollector(registry=registry)
    registry.register(ProcessTree(pids))
    return registry


# prometheus-client lists an instance's files, then removes each: the supervisor's watch and its
# shutdown may both mark one instance gone, and the second would remove a file the first did.
_GONE = threading.Lock()


def instance_gone(pid: int, directory: Path) -> None:
    """After an instance exits: its `live*` gauges leave the sums, its counters stay. Safe to
    call again, and from several threads at once."""
    with _GONE:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
