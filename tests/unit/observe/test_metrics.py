"""service/observe/metrics.py: the names, types, labels and buckets the alerts, the dashboard
and whoever scrapes the service are written against."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from prometheus_client import REGISTRY as GLOBAL_REGISTRY
from prometheus_client import Gauge, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from service.observe import metrics
from service.observe.metrics import REGISTRY

EXPECTED: dict[str, tuple[MetricWrapperBase, str, tuple[str, ...]]] = {
    "fulfillment_events": (metrics.events, "counter", ("type", "outcome")),
    "fulfillment_decision_seconds": (metrics.decision_seconds, "histogram", ()),
    "fulfillment_batch_seconds": (metrics.batch_seconds, "histogram", ()),
    "fulfillment_batch_events": (metrics.batch_events, "histogram", ()),
    "fulfillment_batch_age_seconds": (metrics.batch_age_seconds, "histogram", ()),
    "fulfillment_decide_seconds": (metrics.decide_seconds, "histogram", ()),
    "fulfillment_offset_commit_seconds": (metrics.offset_commit_seconds, "histogram", ()),
    "fulfillment_relay_wake_seconds": (metrics.relay_wake_seconds, "histogram", ()),
    "fulfillment_consumer_lag": (metrics.consumer_lag, "gauge", ("topic", "partition")),
    "fulfillment_outbox_backlog": (metrics.outbox_backlog, "gauge", ()),
    "fulfillment_outbox_oldest_age_seconds": (metrics.outbox_oldest_age_seconds, "gauge", ()),
    "fulfillment_published": (metrics.published, "counter", ()),
    "fulfillment_dlq": (metrics.dlq, "counter", ("reason",)),
    "fulfillment_sweeper_closed": (metrics.sweeper_closed, "counter", ("reason",)),
    "fulfillment_retries": (metrics.retries, "counter", ("loop", "kind")),
    "fulfillment_ready": (metrics.ready, "gauge", ()),
    "fulfillment_build": (metrics.build, "info", ()),
    "fulfillment_parked_customers": (metrics.parked_customers, "gauge", ()),
    "fulfillment_parked_events": (metrics.parked_events, "gauge", ()),
    "fulfillment_poison_retries": (metrics.poison_retries, "counter", ()),
}


def _families() -> dict[str, str]:
    return {family.name: family.type for family in REGISTRY.collect()}


def test_the_registry_defines_exactly_the_service_s_metrics_with_their_types() -> None:
    own = {name: kind for name, kind in _families().items() if name.startswith("fulfillment_")}

    assert own == {name: kind for name, (_, kind, _) in EXPECTED.items()}


@pytest.mark.parametrize("name", EXPECTED)
def test_every_metric_has_its_labels_and_a_help_text(name: str) -> None:
    metric, _, labels = EXPECTED[name]

    assert metric._labelnames == labels
    assert metric._documentation.strip()


def test_the_registry_carries_the_process_and_platform_metrics() -> None:
    names = set(_families())

    assert {"process_resident_memory_bytes", "process_cpu_seconds", "python_info"} <= names


def test_the_service_s_metrics_are_not_on_prometheus_client_s_global_registry() -> None:
    assert not {f.name for f in GLOBAL_REGISTRY.collect()} & set(EXPECTED)


def test_build_info_carries_the_installed_package_version() -> None:
    exposed = generate_latest(REGISTRY).decode()
    (family,) = (
        f for f in text_string_to_metric_families(exposed) if f.name == "fulfillment_build_info"
    )
    (sample,) = family.samples

    assert sample.name == "fulfillment_build_info"
    assert sample.labels == {"version": version("session-fulfillment")}
    assert sample.value == 1


@pytest.mark.parametrize(
    ("buckets", "low", "high"),
    [
        (metrics.DECISION_BUCKETS, 0.001, 60.0),
        (metrics.BATCH_SECONDS_BUCKETS, 0.001, 10.0),
        (metrics.BATCH_EVENTS_BUCKETS, 1.0, 100_000.0),
        (metrics.STAGE_BUCKETS, 0.0005, 60.0),
    ],
)
def test_histogram_buckets_span_their_range_in_ascending_order(
    buckets: tuple[float, ...], low: float, high: float
) -> None:
    assert (buckets[0], buckets[-1]) == (low, high)
    assert list(buckets) == sorted(set(buckets))


def test_a_histogram_uses_its_declared_buckets() -> None:
    exposed = generate_latest(REGISTRY).decode()
    bounds = [
        line.split('le="')[1].split('"')[0]
        for line in exposed.splitlines()
        if line.startswith("fulfillment_decision_seconds_bucket")
    ]

    assert [float(b) for b in bounds] == [*metrics.DECISION_BUCKETS, float("inf")]


def test_closed_label_sets_are_exposed_at_zero_before_anything_happens() -> None:
    exposed = generate_latest(REGISTRY).decode()

    for reason in ("not_json", "invalid", "too_large"):
        assert f'fulfillment_dlq_total{{reason="{reason}"}}' in exposed
    for reason in metrics.SWEEPER_REASONS:
        assert f'fulfillment_sweeper_closed_total{{reason="{reason}"}}' in exposed


@pytest.mark.parametrize(
    ("gauge", "mode"),
    [
        (metrics.consumer_lag, "livesum"),
        (metrics.outbox_backlog, "livemostrecent"),
        (metrics.outbox_oldest_age_seconds, "livemostrecent"),
        (metrics.parked_customers, "livemostrecent"),
        (metrics.parked_events, "livemostrecent"),
        (metrics.ready, "livemin"),
    ],
)
def test_each_gauge_says_how_several_instances_combine_and_a_gone_one_leaves(
    gauge: Gauge, mode: str
) -> None:
    # Not prometheus-client's default `all`, which would give each process a `pid` series.
    assert gauge._multiprocess_mode == mode


def test_every_gauge_of_the_service_has_its_multiprocess_mode_checked() -> None:
    gauges = {name for name, (_, kind, _) in EXPECTED.items() if kind == "gauge"}

    assert gauges == {
        "fulfillment_consumer_lag",
        "fulfillment_outbox_backlog",
        "fulfillment_outbox_oldest_age_seconds",
        "fulfillment_parked_customers",
        "fulfillment_parked_events",
        "fulfillment_ready",
    }
