"""The service's port with several instances: every instance's metrics, written by processes of
their own to the shared directory, summed as each metric means; an exited instance's gauges
leave the sums, its counts stay."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.observe import shared_metrics
from service.observe.shared_metrics import ProcessTree, instance_gone, shared_registry

INSTANCE = """
import sys, time
from service.observe import metrics
created, ready, backlog, lag = (float(v) for v in sys.argv[1:5])
metrics.events.labels(type="payment.completed", outcome="created").inc(created)
metrics.decision_seconds.observe(0.2)
metrics.ready.set(ready)
metrics.consumer_lag.labels("payments", "0").set(lag)
time.sleep(0.01)  # the outbox reading of the second instance is the later one
metrics.outbox_backlog.set(backlog)
"""


def _instance(directory: Path, *values: float) -> int:
    """Runs one instance's metric updates in a process of its own; returns its pid."""
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", INSTANCE + "import os; print(os.getpid())", *map(str, values)],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


def _samples(directory: Path, pids: list[int]) -> dict[str, float]:
    text = generate_latest(shared_registry(directory, lambda: pids)).decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_and_histograms_add_up_and_each_gauge_combines_as_it_means(
    tmp_path: Path,
) -> None:
    first = _instance(tmp_path, 3, 1, 10, 0)  # created, ready, outbox backlog, lag
    second = _instance(tmp_path, 4, 0, 7, 25)

    both = _samples(tmp_path, [os.getpid()])
    instance_gone(second, tmp_path)
    one_left = _samples(tmp_path, [os.getpid()])

    created = "fulfillment_events_total[('outcome', 'created'), ('type', 'payment.completed')]"
    lag = "fulfillment_consumer_lag[('partition', '0'), ('topic', 'payments')]"
    assert both[created] == 7
    assert both["fulfillment_decision_seconds_count[]"] == 2
    assert both["fulfillment_ready[]"] == 0  # the least: one instance is not ready
    assert both["fulfillment_outbox_backlog[]"] == 7  # the latest reading
    assert both[lag] == 25  # summed over the instances, the owner's value
    assert not any("pid" in name for name in both)
    assert one_left[created] == 7  # the exited instance's counts stay
    assert one_left["fulfillment_ready[]"] == 1
    assert one_left["fulfillment_outbox_backlog[]"] == 10
    assert any(name.startswith("fulfillment_build_info") for name in both)
    assert first != second  # two processes, not one


def test_the_build_and_the_processes_are_served_once_the_processes_summed() -> None:
    pid = os.getpid()
    once = {f.name: f.samples[0].value for f in ProcessTree(lambda: [pid]).collect()}
    twice = {f.name: f.samples[0].value for f in ProcessTree(lambda: [pid, pid]).collect()}

    # The same process read twice, a moment apart: its memory may have moved by a page or so.
    assert twice["process_virtual_memory_bytes"] == pytest.approx(
        2 * once["process_virtual_memory_bytes"], rel=0.01
    )
    assert twice["process_start_time_seconds"] == once["process_start_time_seconds"]
    assert twice["process_max_fds"] == once["process_max_fds"]


def test_an_instance_marked_gone_twice_at_once_ends_the_run_without_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervisor's watch and its shutdown may both mark one child gone at the same time.
    prometheus-client lists the files, then removes them: a slow listing stands in for the
    moment between the two, so a second caller would remove what the first already did."""
    pid = 4242
    for mode in ("livesum", "livemostrecent", "livemin"):
        (tmp_path / f"gauge_{mode}_{pid}.db").write_bytes(b"")

    def listed_then_removed(gone: int, path: str) -> None:
        found = glob.glob(os.path.join(path, f"gauge_live*_{gone}.db"))
        time.sleep(0.1)
        for name in found:
            os.remove(name)

    monkeypatch.setattr(shared_metrics, "mark_process_dead", listed_then_removed)
    errors: list[BaseException] = []

    def mark() -> None:
        try:
            instance_gone(pid, tmp_path)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=mark) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []
