"""`fulfillment replay`: reset the consumer group's offsets on the input topics (see
`service/entrypoints/replay.py`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

from service.config.settings import Settings
from service.entrypoints.command import Subcommands


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2026-11-24T09:30:00Z)")
    return value


def add(commands: Subcommands) -> argparse.ArgumentParser:
    from service.entrypoints.replay_args import add_replay_arguments

    replay: argparse.ArgumentParser = commands.add_parser(
        "replay", help="reset the consumer group's offsets on the input topics to reprocess"
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="from the start of each topic")
    target.add_argument("--to-datetime", type=_datetime, metavar="T", help="RFC 3339 time")
    add_replay_arguments(replay, target)
    return replay


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.replay import replay

    return asyncio.run(
        replay(
            settings,
            to_earliest=args.to_earliest,
            to_datetime=args.to_datetime,
            topics=args.topics,
            dry_run=args.dry_run,
            to_offset=args.to_offset,
            shift_by=args.shift_by,
            by_duration=args.by_duration,
            execute=args.execute,
            export=args.export,
        )
    )
