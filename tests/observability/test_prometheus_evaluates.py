"""A real Prometheus scraping the service's metrics evaluates every dashboard query and alert.

promtool checks the rules' syntax and the unit tests feed them synthetic series; this runs them
against what the service's registry actually exposes (names, label sets, types, histogram
buckets), so a query that parses but matches nothing the service serves is caught.

The scrape target is the `scrape_target` fixture: here prometheus-client's own HTTP server
serving `service.adapters.metrics.REGISTRY`, with values that keep moving. Once the service
serves /metrics itself, the fixture can start it and yield its address instead.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import start_http_server

from service.adapters import metrics
from tests.observability.prometheus import JOB, Prometheus, running
from tests.observability.promql import (
    Expression,
    alert_expressions,
    alert_rules,
    every_expression,
    for_prometheus,
    panel_queries,
)

pytestmark = pytest.mark.integration


def _record_sample_values(stop: threading.Event) -> None:
    """What a busy instance would record, every 50 ms until `stop`."""
    rng = random.Random(7)
    step = 0
    while not stop.wait(0.05):
        step += 1
        for event_type, outcome in [
            ("payment.completed", "created"),
            ("payment.completed", "rejected"),
            ("mechanic.accepted", "accepted"),
            ("mechanic.accepted", "acceptance_rejected"),
            ("session.ended", "completed"),
            ("session.ended", "duplicate"),
        ]:
            metrics.events.labels(type=event_type, outcome=outcome).inc(rng.randint(1, 20))
        for _ in range(10):
            metrics.decision_seconds.observe(rng.lognormvariate(-4, 1.5))
        metrics.batch_seconds.observe(rng.uniform(0.002, 0.2))
        metrics.batch_events.observe(rng.randint(1, 2000))
        for partition in range(3):
            metrics.consumer_lag.labels(topic="payments.completed", partition=str(partition)).set(
                rng.randint(0, 50)
            )
        metrics.outbox_backlog.set(rng.randint(0, 100))
        metrics.outbox_oldest_age_seconds.set(rng.uniform(0, 1))
        metrics.published.inc(rng.randint(1, 20))
        if step % 5 == 0:
            metrics.dlq.labels(reason="not_json").inc()
            metrics.sweeper_closed.labels(reason="expired").inc()
            metrics.retries.labels(loop="relay", kind="transient").inc()
            metrics.poison_retries.inc()
        metrics.ready.set(1)
        metrics.parked_customers.set(1)
        metrics.parked_events.set(3)


@pytest.fixture(scope="module")
def scrape_target() -> Iterator[str]:
    """host:port serving the service's /metrics for Prometheus to scrape."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.REGISTRY)
    stop = threading.Event()
    recorder = threading.Thread(target=_record_sample_values, args=(stop,), daemon=True)
    recorder.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        recorder.join(timeout=5)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(scrape_target: str) -> Iterator[Prometheus]:
    with running(scrape_target) as started:
        started.wait_until(f'up{{job="{JOB}"}} == 1')
        # Enough scrapes for rate() over the dashboard's 10 s window, and rules evaluated.
        started.wait_until(f'count_over_time(up{{job="{JOB}"}}[10s]) >= 4')
        yield started


def test_prometheus_scrapes_the_service_s_metrics(prometheus: Prometheus) -> None:
    (target,) = prometheus.api("targets")["activeTargets"]

    assert target["health"] == "up", target.get("lastError")
    assert prometheus.query(f'fulfillment_build_info{{job="{JOB}"}}')[0]["metric"]["version"]
    assert prometheus.query(f'process_resident_memory_bytes{{job="{JOB}"}}')


def test_prometheus_loads_every_alert_and_evaluates_each_without_error(
    prometheus: Prometheus,
) -> None:
    (group,) = prometheus.api("rules")["groups"]
    health = {rule["name"]: (rule["health"], rule.get("lastError")) for rule in group["rules"]}

    assert set(health) == {rule["alert"] for rule in alert_rules()}
    assert all(state == ("ok", None) or state == ("ok", "") for state in health.values()), health


@pytest.mark.parametrize("expression", every_expression(), ids=lambda e: e.where)
def test_every_dashboard_query_and_alert_expression_evaluates(
    prometheus: Prometheus, expression: Expression
) -> None:
    prometheus.query(for_prometheus(expression.expr))


@pytest.mark.parametrize("query", panel_queries(), ids=lambda e: e.where)
def test_every_panel_query_returns_numbers_from_the_service_s_metrics(
    prometheus: Prometheus, query: Expression
) -> None:
    result = prometheus.query(for_prometheus(query.expr))

    assert result, f"{query.where}: no data for {query.expr}"
    values = [float(sample["value"][1]) for sample in result]
    assert all(math.isfinite(value) for value in values), f"{query.where}: {values}"


def test_the_alerts_on_parked_customers_and_dead_letters_see_the_sample_values(
    prometheus: Prometheus,
) -> None:
    # Both conditions hold in the sample values; the alerts are pending or firing, not blind.
    expressions = {e.where: e.expr for e in alert_expressions()}

    assert prometheus.query(expressions["alert FulfillmentParkedCustomers"])
    assert prometheus.query(expressions["alert FulfillmentDeadLetters"])
    assert not prometheus.query(expressions["alert FulfillmentTargetDown"])
