"""`fulfillment dlq list [--since T] [--reason R] | show TOPIC:PARTITION:OFFSET | redrive
(TOPIC:PARTITION:OFFSET... | --all | --reason R) [--dry-run] [--force]`."""

from __future__ import annotations

import argparse

from schemas import DecodeErrorKind
from service.config.settings import Settings
from service.entrypoints.command import Subcommands
from service.entrypoints.commands.operator import json_flag, refusing, rfc3339


def _origin(text: str) -> str:
    from service.adapters.kafka.dead_letters import parse_origin

    try:
        return parse_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add(commands: Subcommands) -> argparse.ArgumentParser:
    kinds = [k.value for k in DecodeErrorKind]
    dlq: argparse.ArgumentParser = commands.add_parser(
        "dlq", help="the dead-letter topic: list, show, redrive"
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters: origin, reason, time")
    listing.add_argument("--since", type=rfc3339, metavar="T", help="dead-lettered from T on")
    listing.add_argument("--reason", choices=kinds, help="only this error kind")
    json_flag(listing)
    show = actions.add_parser("show", help="one dead letter: bytes, key, headers, error")
    show.add_argument("origins", type=_origin, nargs=1, metavar="TOPIC:PARTITION:OFFSET")
    json_flag(show)
    again = actions.add_parser(
        "redrive", help="republish originals to their topics, without the error headers"
    )
    target = again.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "origins", type=_origin, nargs="*", default=[], metavar="TOPIC:PARTITION:OFFSET"
    )
    target.add_argument(
        "--all", action="store_true", help="the latest letter of every original, once"
    )
    target.add_argument(
        "--reason", choices=kinds, help="the latest letter of each original failing so"
    )
    again.add_argument("--dry-run", action="store_true", help="say what would be sent")
    again.add_argument(
        "--force",
        action="store_true",
        help="redrive letters older than the dedupe retention too (may decide an event twice)",
    )
    json_flag(again)
    # What an action does not take: one namespace for all three.
    dlq.set_defaults(since=None, reason=None, origins=[], all=False, dry_run=False, force=False)
    return dlq


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.dlq import dlq_command

    return refusing(
        settings,
        dlq_command(
            settings,
            args.dlq_command,
            since=args.since,
            reason=args.reason,
            origins=args.origins,
            everything=args.all,
            dry_run=args.dry_run,
            force=args.force,
            as_json=args.json,
        ),
    )
