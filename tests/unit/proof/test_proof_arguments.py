"""`python -m tests.proof`'s arguments: `--faults` names the fault kinds a run injects, and a
kind it does not know is refused before anything runs (a typo would make a run without faults)."""

from __future__ import annotations

import pytest

from tests.proof.__main__ import parse


def test_faults_keeps_the_named_kinds_only() -> None:
    plan = parse(["--seed", "1", "--faults", "pg_restart, failover"])
    assert plan.kinds == frozenset({"pg_restart", "failover"})


def test_without_faults_every_kind_is_injected() -> None:
    assert parse(["--seed", "1"]).kinds is None


def test_an_unknown_fault_kind_is_refused_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        parse(["--faults", "failover,reboot"])
    assert ended.value.code == 2
    assert "unknown fault kind(s): reboot" in capsys.readouterr().err


def test_the_new_primary_faults_can_be_named() -> None:
    assert parse(["--faults", "read_only,switchover"]).kinds == frozenset(
        {"read_only", "switchover"}
    )


def test_relay_page_sets_the_relay_s_batch_size_and_nothing_else_by_default() -> None:
    assert parse(["--seed", "1"]).overrides == {}
    assert parse(["--seed", "1", "--relay-page", "3"]).overrides == {"relay_batch_size": 3}


def test_a_relay_page_below_one_is_refused_with_exit_2() -> None:
    with pytest.raises(SystemExit) as ended:
        parse(["--relay-page", "0"])
    assert ended.value.code == 2
