"""The operator commands' command lines reach their functions with what was typed, and bad
arguments are refused by argparse with exit code 2 before anything connects."""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

import pytest

from service.bootstrap.cpus import usable_cpus
from service.config.settings import Settings
from service.entrypoints import cli, dlq, parked, purge_stale, rebuild, sessions
from service.entrypoints.command import Command
from service.entrypoints.reprocess_args import MAX_WORKERS
from service.entrypoints.table import BY_NAME, COMMANDS

ALICE = "6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41"


def recorder(calls: list[tuple[Any, ...]]) -> Any:
    async def record(settings: Settings, *args: Any, **kwargs: Any) -> int:
        calls.append((args, kwargs))
        return 0

    return record


@pytest.mark.parametrize(
    ("argv", "module", "name", "expected"),
    [
        (["parked", "list", "--json"], parked, "parked_command", {"as_json": True}),
        (["parked", "show", ALICE], parked, "parked_command", {"customer": UUID(ALICE)}),
        (
            ["parked", "release", "--all", "--dry-run"],
            parked,
            "parked_command",
            {"everything": True, "dry_run": True},
        ),
        (["dlq", "list", "--reason", "not_json"], dlq, "dlq_command", {"reason": "not_json"}),
        (["dlq", "list", "--since", "2026-11-24T09:30:00Z"], dlq, "dlq_command", {"origins": []}),
        (
            ["dlq", "show", "payments.completed:0:42"],
            dlq,
            "dlq_command",
            {"origins": ["payments.completed:0:42"]},
        ),
        (
            ["dlq", "redrive", "a.b:1:2", "c:0:0", "--dry-run"],
            dlq,
            "dlq_command",
            {"origins": ["a.b:1:2", "c:0:0"], "dry_run": True},
        ),
        (
            ["dlq", "redrive", "--all", "--force"],
            dlq,
            "dlq_command",
            {"everything": True, "force": True},
        ),
        (
            ["sessions", "show", "--payment", "pi_1"],
            sessions,
            "show_sessions",
            {"payment": "pi_1", "customer": None},
        ),
        (
            ["purge-stale", "--dry-run", "--json"],
            purge_stale,
            "purge_stale",
            {"dry_run": True, "as_json": True},
        ),
        (
            ["rebuild", "--database-url", "postgresql://u@h/d", "--workers", "3"],
            rebuild,
            "rebuild",
            {"database_url": "postgresql://u@h/d", "workers": 3},
        ),
        (
            ["rebuild", "--database-url", "postgresql://u@h/d"],
            rebuild,
            "rebuild",
            {"workers": min(usable_cpus(), MAX_WORKERS)},
        ),
    ],
)
def test_each_operator_command_line_reaches_its_command_with_what_was_typed(
    argv: list[str],
    module: Any,
    name: str,
    expected: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(module, name, recorder(calls))
    args = cli.parser().parse_args(argv)
    command = BY_NAME[args.command]
    assert command.run is not None
    assert command.run(Settings(), args) == 0
    ((_, kwargs),) = calls
    assert expected.items() <= kwargs.items()


@pytest.mark.parametrize(
    "argv",
    [
        ["parked", "show", "not-a-uuid"],
        ["parked", "release"],
        ["parked", "release", ALICE, "--all"],
        ["dlq", "show", "no-coordinates"],
        ["dlq", "redrive"],
        ["dlq", "list", "--since", "2026-11-24T09:30:00"],
        ["dlq", "list", "--reason", "bogus"],
        ["sessions", "show"],
        ["rebuild", "--database-url", "postgresql://u@h/d", "--workers", "0"],
        ["rebuild", "--database-url", "postgresql://u@h/d", "--workers", str(MAX_WORKERS + 1)],
        ["rebuild", "--database-url", "postgresql://u@h/d", "--workers", "many"],
    ],
)
def test_bad_operator_arguments_are_refused_with_exit_code_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parser().parse_args(argv)
    assert exited.value.code == 2


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_every_command_of_the_table_parses_under_its_own_name(command: Command) -> None:
    made = command.add(argparse.ArgumentParser(prog="fulfillment").add_subparsers())
    assert made.prog == f"fulfillment {command.name}"


def test_a_command_runs_with_the_settings_or_offline_never_both() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Command("both", add=lambda commands: commands, run=lambda s, a: 0, offline=lambda a: 0)
