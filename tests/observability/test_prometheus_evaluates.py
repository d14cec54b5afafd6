"""A real Prometheus scraping the service's metrics evaluates every dashboard query and alert.

promtool checks the rules' syntax and the unit tests feed them synthetic series; this runs them
against what the service's registry actually exposes (names, label sets, types, histogram
buckets), so a query that parses but matches nothing the service serves is caught.

The scrape target is the running service (`ServiceTarget`: `fulfillment run` with two instances,
on its own database and topics, fed a steady mixed stream), serving the sum of both instances'
metrics on its one port.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import create_database, drop_database, settings_for
from tests.observability.prometheus import JOB, Prometheus, running
from tests.observability.promql import (
    Expression,
    alert_expressions,
    alert_rules,
    every_expression,
    for_prometheus,
    panel_queries,
)
from tests.observability.service_http import two_free_ports
from tests.observability.service_target import ServiceTarget
from tests.servers import Servers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def target_dsn(servers: Servers) -> AsyncIterator[str]:
    dsn = await create_database(servers)
    yield dsn
    await drop_database(servers, dsn)


@pytest.fixture(scope="module")
def scrape_target(servers: Servers, target_dsn: str) -> Iterator[str]:
    """host:port of a running service's /metrics for Prometheus to scrape."""
    settings = settings_for(servers, target_dsn, uuid.uuid4().hex[:10], http_port=two_free_ports())
    with ServiceTarget(settings) as target:
        yield target.address


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


def test_the_alerts_see_what_the_running_service_does(prometheus: Prometheus) -> None:
    # Its stream has undecodable messages: the dead-letter alert is pending or firing, not
    # blind. It is ready and scraped, so neither of those alerts holds.
    expressions = {e.where: e.expr for e in alert_expressions()}

    assert prometheus.query(expressions["alert FulfillmentDeadLetters"])
    assert not prometheus.query(expressions["alert FulfillmentNotReady"])
    assert not prometheus.query(expressions["alert FulfillmentTargetDown"])


def test_the_sweeper_s_cancellations_and_the_decision_outcomes_reach_prometheus(
    prometheus: Prometheus,
) -> None:
    closed = prometheus.query(
        f'sum(fulfillment_sweeper_closed_total{{job="{JOB}",reason="expired"}})'
    )
    outcomes = prometheus.query(f'sum by (outcome) (fulfillment_events_total{{job="{JOB}"}})')

    assert float(closed[0]["value"][1]) > 0
    assert {"created", "rejected", "duplicate", "dead_lettered"} <= {
        sample["metric"]["outcome"] for sample in outcomes
    }
