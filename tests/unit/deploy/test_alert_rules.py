"""deploy/observability/alerts.yml: valid rules, each tested both firing and silent, each with a
runbook section.

promtool is Prometheus' own checker and rule-test runner. Without it these tests fail rather
than skip: a skipped test would let a broken rule file through unnoticed. `make test` installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promql import ALERT_TESTS, ALERTS, OBSERVABILITY, ROOT, alert_rules

README = OBSERVABILITY / "README.md"


def _promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: `make test` installs it (Debian package `prometheus`)",
            pytrace=False,
        )
    return subprocess.run(
        [promtool, *arguments],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rule_tests() -> list[dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(ALERT_TESTS.read_text("utf-8"))
    return [check for test in loaded["tests"] for check in test.get("alert_rule_test", [])]


def test_promtool_accepts_the_rule_file() -> None:
    checked = _promtool("check", "rules", ALERTS.name)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    tested = _promtool("test", "rules", ALERT_TESTS.name)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_unit_tests_load_this_rule_file() -> None:
    loaded = yaml.safe_load(ALERT_TESTS.read_text("utf-8"))

    assert loaded["rule_files"] == [ALERTS.name]


@pytest.mark.parametrize("alert", [rule["alert"] for rule in alert_rules()])
def test_every_alert_is_tested_both_firing_and_staying_silent(alert: str) -> None:
    checks = [check for check in _rule_tests() if check["alertname"] == alert]

    assert any(check.get("exp_alerts") for check in checks), f"{alert}: never expected to fire"
    assert any(not check.get("exp_alerts") for check in checks), f"{alert}: never silent"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_that_exists(
    rule: dict[str, Any],
) -> None:
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in README.read_text("utf-8").splitlines()
        if line.startswith("#")
    }

    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]
    path, _, anchor = rule["annotations"]["runbook"].partition("#")
    assert path == "deploy/observability/README.md"
    assert anchor in headings, f"{rule['alert']}: no README section #{anchor}"


@pytest.mark.parametrize("target", ["test", "unit"])
def test_make_installs_prometheus_before_pytest_when_promtool_is_missing(
    target: str, tmp_path: Path
) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed", pytrace=False)
    planned = subprocess.run(
        ["make", "-n", target, f"PROMTOOL={tmp_path / 'promtool'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    install = next(i for i, line in enumerate(planned) if "apt-get install" in line)
    pytest_run = next(i for i, line in enumerate(planned) if "/pytest " in line)

    assert "prometheus" in planned[install].split()
    assert install < pytest_run


def test_make_leaves_an_installed_promtool_alone() -> None:
    planned = subprocess.run(
        ["make", "-n", "tools", f"PROMTOOL={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    assert "apt-get" not in planned
