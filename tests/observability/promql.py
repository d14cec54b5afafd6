"""The PromQL in deploy/observability/, and the metric names it refers to.

Shared by the unit tests (every name is one the service defines) and the test against a real
Prometheus (every expression evaluates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERT_TESTS = OBSERVABILITY / "alerts.test.yml"
DASHBOARD = OBSERVABILITY / "dashboard.json"

# Series Prometheus itself adds to every scrape; not the service's to define.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# The dashboard's Grafana variables, as the tests give them to Prometheus: every job, and a rate
# window of several scrapes at the tests' 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$job": ".+"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
}
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"and", "or", "unless", "bool", "offset", "inf", "nan"}
)


@dataclass(frozen=True)
class Expression:
    where: str  # "panel <title> <refId>", "alert <name>" or "variable <name>"
    expr: str


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of `registry` can carry, including labelled metrics that have
    no children yet (they appear in collect() without samples)."""
    names = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (PromQL has no Python parser; this is a lexer:
    strings, label matchers, ranges and grouping label lists are removed, then every remaining
    identifier that is not a function call or keyword is a metric name)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()", text):
        if match.group(0).lower() not in _KEYWORDS:
            names.add(match.group(0))
    return names


def for_prometheus(expr: str) -> str:
    """A dashboard query with its Grafana variables replaced, as Prometheus can evaluate it."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def panel_queries() -> list[Expression]:
    return [
        Expression(f"panel {panel['title']} {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[Expression]:
    """`label_values(metric, label)` variables, as the metric selector they query."""
    found = []
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        selector = re.fullmatch(r"label_values\(\s*(.+?)\s*,\s*\w+\s*\)", query)
        assert selector, f"variable {variable['name']}: not label_values(metric, label)"
        found.append(Expression(f"variable {variable['name']}", selector.group(1)))
    return found


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text("utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def alert_expressions() -> list[Expression]:
    return [Expression(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def every_expression() -> list[Expression]:
    return panel_queries() + variable_queries() + alert_expressions()
