"""The operator commands' part of the command line: `parked`, `dlq`, `sessions`, `purge-stale`.
Each prints text, or JSON with `--json`; each that changes anything has `--dry-run`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas import DecodeErrorKind
from service.entrypoints import output
from service.redaction import mask_urls_in
from service.settings import Settings

COMMANDS = ("parked", "sessions", "dlq", "purge-stale")


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UUID") from None


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_operator_commands(commands: Any) -> None:
    parked = commands.add_parser(
        "parked", help="customers parked behind a poison event: list, show, release"
    )
    parked_sub = parked.add_subparsers(dest="parked_command", required=True, metavar="ACTION")
    _json_flag(parked_sub.add_parser("list", help="parked customers, their event counts"))
    show = parked_sub.add_parser("show", help="a customer's parked events, in order")
    show.add_argument("customer", type=_uuid, metavar="CUSTOMER")
    _json_flag(show)
    release = parked_sub.add_parser(
        "release", help="decide parked events again, in order (after a fix)"
    )
    target = release.add_mutually_exclusive_group(required=True)
    target.add_argument("customer", type=_uuid, nargs="?", metavar="CUSTOMER")
    target.add_argument("--all", action="store_true", help="every parked customer")
    release.add_argument("--dry-run", action="store_true", help="decide, roll back, report")
    _json_flag(release)
    _add_sessions(commands)
    _add_dlq(commands)
    purge = commands.add_parser(
        "purge-stale", help="close the sessions due now, each with its session.* event"
    )
    purge.add_argument("--dry-run", action="store_true", help="say what would be closed")
    _json_flag(purge)


def _origin(text: str) -> str:
    from service.adapters.kafka.dead_letters import parse_origin

    try:
        return parse_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2026-11-24T09:30:00Z)")
    return value


def _add_dlq(commands: Any) -> None:
    kinds = [k.value for k in DecodeErrorKind]
    dlq = commands.add_parser("dlq", help="the dead-letter topic: list, show, redrive")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = dlq_sub.add_parser("list", help="dead letters: origin, reason, time")
    listing.add_argument("--since", type=_datetime, metavar="T", help="dead-lettered from T on")
    listing.add_argument("--reason", choices=kinds, help="only this error kind")
    _json_flag(listing)
    show = dlq_sub.add_parser("show", help="one dead letter: bytes, key, headers, error")
    show.add_argument("origins", type=_origin, nargs=1, metavar="TOPIC:PARTITION:OFFSET")
    _json_flag(show)
    again = dlq_sub.add_parser(
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
    _json_flag(again)


def _add_sessions(commands: Any) -> None:
    sessions = commands.add_parser(
        "sessions", help="a customer's sessions and what stops them booking"
    )
    sessions_sub = sessions.add_subparsers(dest="sessions_command", required=True)
    show = sessions_sub.add_parser(
        "show", help="sessions, the payment's outcome, whether parked: why can't they book?"
    )
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", type=_uuid, metavar="ID")
    which.add_argument("--session", type=_uuid, metavar="ID")
    which.add_argument("--payment", metavar="ID")
    _json_flag(show)


def run_operator_command(settings: Settings, args: argparse.Namespace) -> int:
    """Runs one operator command; a server that refuses or cannot be reached ends in one line
    on stderr and exit code 1 (the database's own outages are the caller's to report)."""
    import asyncpg
    from aiokafka.errors import KafkaError

    try:
        return _run(settings, args)
    except KafkaError as error:
        line = f"Kafka at {settings.kafka_bootstrap_servers}: {error}"
        print(f"fulfillment: {mask_urls_in(line, settings.secrets)}", file=sys.stderr)
        return output.FAILED
    except asyncpg.PostgresError as error:
        line = f"PostgreSQL refused: {error}"
        print(f"fulfillment: {mask_urls_in(line, settings.secrets)}", file=sys.stderr)
        return output.FAILED


def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "parked":
        from service.entrypoints.parked import parked_command

        return asyncio.run(
            parked_command(
                settings,
                args.parked_command,
                customer=getattr(args, "customer", None),
                everything=getattr(args, "all", False),
                dry_run=getattr(args, "dry_run", False),
                as_json=args.json,
            )
        )
    if args.command == "sessions":
        from service.entrypoints.sessions import show_sessions

        return asyncio.run(
            show_sessions(
                settings,
                customer=args.customer,
                session=args.session,
                payment=args.payment,
                as_json=args.json,
            )
        )
    if args.command == "dlq":
        from service.entrypoints.dlq import dlq_command

        return asyncio.run(
            dlq_command(
                settings,
                args.dlq_command,
                since=getattr(args, "since", None),
                reason=getattr(args, "reason", None),
                origins=getattr(args, "origins", []),
                everything=getattr(args, "all", False),
                dry_run=getattr(args, "dry_run", False),
                force=getattr(args, "force", False),
                as_json=args.json,
            )
        )
    if args.command == "purge-stale":
        from service.entrypoints.purge_stale import purge_stale

        return asyncio.run(purge_stale(settings, dry_run=args.dry_run, as_json=args.json))
    raise AssertionError(f"not an operator command: {args.command}")
