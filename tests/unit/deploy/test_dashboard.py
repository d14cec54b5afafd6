"""deploy/observability/: the dashboard and the alerts use only metrics the service defines.

A metric renamed in service/observe/metrics.py, or misspelled in a query, would otherwise be an
empty panel or an alert that can never fire, noticed only when it is needed.
"""

from __future__ import annotations

import re

import pytest

from service.observe.metrics import REGISTRY
from tests.observability.promql import (
    SCRAPE_SERIES,
    Expression,
    dashboard,
    every_expression,
    exposed_names,
    metric_names,
    panel_queries,
    panels,
)

DEFINED = exposed_names(REGISTRY) | SCRAPE_SERIES


@pytest.mark.parametrize("expression", every_expression(), ids=lambda e: e.where)
def test_every_metric_a_panel_variable_or_alert_uses_is_one_the_service_defines(
    expression: Expression,
) -> None:
    used = metric_names(expression.expr)

    assert used, f"{expression.where}: no metric found in {expression.expr!r}"
    assert used <= DEFINED, f"{expression.where}: not defined: {sorted(used - DEFINED)}"


def test_a_misspelled_or_unknown_metric_is_reported_not_taken_for_a_defined_one() -> None:
    used = metric_names(
        'sum by (outcome) (rate(fulfillment_event_total{job=~"$job"}[5m])) '
        "/ on (instance) group_left (version) fulfillment_build_info > 1e3"
    )

    assert used == {"fulfillment_event_total", "fulfillment_build_info"}
    assert used - DEFINED == {"fulfillment_event_total"}


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    used_by_panel = {
        panel["title"]: set().union(*(metric_names(t["expr"]) for t in panel["targets"]))
        for panel in panels()
        if panel.get("targets")
    }
    needed = {
        "fulfillment_events_total",
        "fulfillment_decision_seconds_bucket",
        "fulfillment_consumer_lag",
        "fulfillment_outbox_backlog",
        "fulfillment_outbox_oldest_age_seconds",
        "fulfillment_dlq_total",
        "fulfillment_retries_total",
        "process_resident_memory_bytes",
        "fulfillment_ready",
        "fulfillment_parked_customers",
        "fulfillment_parked_events",
    }

    assert needed <= set().union(*used_by_panel.values())


def test_throughput_is_by_outcome_and_retries_by_loop_and_kind_and_dead_letters_by_reason() -> None:
    grouping = {
        "fulfillment_events_total": "by (outcome)",
        "fulfillment_retries_total": "by (loop, kind)",
        "fulfillment_dlq_total": "by (reason)",
        "process_resident_memory_bytes": "{{instance}}",
    }
    for metric, how in grouping.items():
        panels_of = [
            panel
            for panel in panels()
            for target in panel.get("targets", [])
            if metric in metric_names(target["expr"])
        ]
        assert any(
            how in target["expr"] or how == target.get("legendFormat")
            for panel in panels_of
            for target in panel["targets"]
            if metric in metric_names(target["expr"])
        ), f"{metric}: no query grouped {how}"


def test_decision_latency_shows_p50_p90_and_p99_from_the_histogram() -> None:
    quantiles = {
        float(match.group(1))
        for query in panel_queries()
        if "fulfillment_decision_seconds_bucket" in metric_names(query.expr)
        for match in [re.match(r"histogram_quantile\(([\d.]+),", query.expr)]
        if match
    }

    assert quantiles == {0.5, 0.9, 0.99}


def test_every_query_uses_the_dashboards_data_source_and_job_variables() -> None:
    variables = {variable["name"] for variable in dashboard()["templating"]["list"]}

    assert variables == {"datasource", "job"}
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel.get("targets", []):
            for metric in metric_names(target["expr"]):
                matchers = re.findall(rf"(?<![\w:]){metric}(\{{[^}}]*\}})?", target["expr"])
                assert matchers, f"{panel['title']}: {metric}"
                assert all('job=~"$job"' in m for m in matchers), f"{panel['title']}: {metric}"


def test_panels_have_unique_ids_and_fit_the_grids_24_columns() -> None:
    ids = [panel["id"] for panel in panels()]

    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
