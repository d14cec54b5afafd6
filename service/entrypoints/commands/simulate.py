"""`fulfillment simulate [--rate R] [--customers N] [--duration S] [--seed N]`."""

from __future__ import annotations

import argparse
import asyncio

from service.config.settings import Settings
from service.entrypoints.command import Subcommands


def add(commands: Subcommands) -> argparse.ArgumentParser:
    simulate: argparse.ArgumentParser = commands.add_parser(
        "simulate", help="produce a realistic mixed stream and print outcomes as they arrive"
    )
    simulate.add_argument("--rate", type=float, default=20.0, help="input events per second")
    simulate.add_argument("--customers", type=int, default=50, help="distinct customers")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds to produce for")
    simulate.add_argument(
        "--seed", type=int, default=None, help="random seed, for a repeatable run"
    )
    return simulate


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.entrypoints.simulate import simulate

    return asyncio.run(
        simulate(
            settings,
            rate=args.rate,
            customers=args.customers,
            duration=args.duration,
            seed=args.seed,
        )
    )
