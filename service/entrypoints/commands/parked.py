"""`fulfillment parked list | show CUSTOMER | release (CUSTOMER | --all) [--dry-run]`."""

from __future__ import annotations

import argparse

from service.config.settings import Settings
from service.entrypoints.command import Subcommands
from service.entrypoints.commands.operator import json_flag, refusing, uuid


def add(commands: Subcommands) -> argparse.ArgumentParser:
    parked: argparse.ArgumentParser = commands.add_parser(
        "parked", help="customers parked behind a poison event: list, show, release"
    )
    actions = parked.add_subparsers(dest="parked_command", required=True, metavar="ACTION")
    json_flag(actions.add_parser("list", help="parked customers, their event counts"))
    show = actions.add_parser("show", help="a customer's parked events, in order")
    show.add_argument("customer", type=uuid, metavar="CUSTOMER")
    json_flag(show)
    release = actions.add_parser(
        "release", help="decide parked events again, in order (after a fix)"
    )
    target = release.add_mutually_exclusive_group(required=True)
    target.add_argument("customer", type=uuid, nargs="?", metavar="CUSTOMER")
    target.add_argument("--all", action="store_true", help="every parked customer")
    release.add_argument("--dry-run", action="store_true", help="decide, roll back, report")
    json_flag(release)
    # What an action does not take: one namespace for all three.
    parked.set_defaults(customer=None, all=False, dry_run=False)
    return parked


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.parked import parked_command

    return refusing(
        settings,
        parked_command(
            settings,
            args.parked_command,
            customer=args.customer,
            everything=args.all,
            dry_run=args.dry_run,
            as_json=args.json,
        ),
    )
