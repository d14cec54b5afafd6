"""The options `fulfillment replay` shares with `kafka-consumer-groups.sh --reset-offsets`."""

from __future__ import annotations

import argparse
from datetime import timedelta

from service.reprocess.replay_targets import parse_duration


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_replay_arguments(
    replay: argparse.ArgumentParser, target: argparse._ActionsContainer
) -> None:
    target.add_argument("--to-offset", type=int, metavar="N", help="to offset N of each partition")
    target.add_argument(
        "--shift-by",
        type=int,
        metavar="N",
        help="the committed offsets moved by N (negative: back)",
    )
    target.add_argument(
        "--by-duration", type=_duration, metavar="D", help="this long ago, e.g. PT1H30M or P1D"
    )
    replay.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC[:P,...]",
        help="default: all input topics; topic:0,2 for some partitions",
    )
    mode = replay.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    mode.add_argument(
        "--execute",
        action="store_true",
        help="commit the plan (needed for --to-offset, --shift-by, --by-duration)",
    )
    replay.add_argument(
        "--export", action="store_true", help="print the plan as CSV (topic,partition,offset)"
    )
