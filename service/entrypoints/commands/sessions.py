"""`fulfillment sessions show --customer ID | --session ID | --payment ID [--json]`."""

from __future__ import annotations

import argparse

from service.config.settings import Settings
from service.entrypoints.command import Subcommands
from service.entrypoints.commands.operator import json_flag, refusing, uuid


def add(commands: Subcommands) -> argparse.ArgumentParser:
    sessions: argparse.ArgumentParser = commands.add_parser(
        "sessions", help="a customer's sessions and what stops them booking"
    )
    actions = sessions.add_subparsers(dest="sessions_command", required=True)
    show = actions.add_parser(
        "show", help="sessions, the payment's outcome, whether parked: why can't they book?"
    )
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", type=uuid, metavar="ID")
    which.add_argument("--session", type=uuid, metavar="ID")
    which.add_argument("--payment", metavar="ID")
    json_flag(show)
    return sessions


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.sessions import show_sessions

    return refusing(
        settings,
        show_sessions(
            settings,
            customer=args.customer,
            session=args.session,
            payment=args.payment,
            as_json=args.json,
        ),
    )
