"""The command line of `fulfillment rebuild` and `fulfillment restore`, registered in `table.py`."""

from __future__ import annotations

import argparse
from typing import Any

from service.bootstrap.cpus import usable_cpus
from service.config.settings import Settings


def add_rebuild(commands: Any) -> argparse.ArgumentParser:
    rebuild: argparse.ArgumentParser = commands.add_parser(
        "rebuild",
        help="re-decide the input topics into an empty database and compare with what was "
        "published",
    )
    rebuild.add_argument("--database-url", required=True, metavar="URL", help="empty database")
    rebuild.add_argument(
        "--shadow-topic", metavar="T", help="publish the re-made outputs there (default: nowhere)"
    )
    rebuild.add_argument(
        "--order",
        choices=("published", "arrival"),
        default="published",
        help="published: as the changelog records the live decisions (default); arrival: "
        "as the inputs arrived, to see what this code would decide differently",
    )
    rebuild.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N",
        help="processes applying the re-decisions, over disjoint customers (1 to "
        f"{MAX_WORKERS}; default auto: one per CPU this process may use); the result is the "
        "same for any number",
    )
    rebuild.add_argument("--json", action="store_true", help="the summary as one JSON object")
    return rebuild


MAX_WORKERS = 16


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"not auto nor a number from 1 to {MAX_WORKERS}")
    return int(text)


def workers(chosen: int | str) -> int:
    """`--workers`, with `auto` the CPUs this process may use (affinity, quota)."""
    return min(usable_cpus(), MAX_WORKERS) if chosen == "auto" else int(chosen)


def add_restore(commands: Any) -> argparse.ArgumentParser:
    restore: argparse.ArgumentParser = commands.add_parser(
        "restore", help="rebuild the state from sessions.events alone, into an empty database"
    )
    restore.add_argument("--database-url", required=True, metavar="URL", help="empty database")
    restore.add_argument("--json", action="store_true", help="the summary as one JSON object")
    restore.add_argument(
        "--accept-parked",
        action="store_true",
        help="exit 0 even when the parked events of the database being replaced cannot be read "
        "(they are not restored)",
    )
    return restore


async def run_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "rebuild":
        from service.entrypoints.rebuild import rebuild

        return await rebuild(
            settings,
            database_url=args.database_url,
            shadow_topic=args.shadow_topic,
            order=args.order,
            as_json=args.json,
            workers=workers(args.workers),
        )
    from service.entrypoints.restore import restore

    return await restore(
        settings,
        database_url=args.database_url,
        as_json=args.json,
        accept_parked=args.accept_parked,
    )
