"""`fulfillment purge-stale [--dry-run] [--json]`."""

from __future__ import annotations

import argparse

from service.config.settings import Settings
from service.entrypoints.command import Subcommands
from service.entrypoints.commands.operator import json_flag, refusing


def add(commands: Subcommands) -> argparse.ArgumentParser:
    purge: argparse.ArgumentParser = commands.add_parser(
        "purge-stale", help="close the sessions due now, each with its session.* event"
    )
    purge.add_argument("--dry-run", action="store_true", help="say what would be closed")
    json_flag(purge)
    return purge


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.purge_stale import purge_stale

    return refusing(settings, purge_stale(settings, dry_run=args.dry_run, as_json=args.json))
