"""`fulfillment run`: consume, decide and publish until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio

from service.config.settings import Settings
from service.entrypoints.command import Subcommands


def add(commands: Subcommands) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run", help="consume, decide and publish until SIGINT/SIGTERM"
    )
    return parser


def run(settings: Settings, args: argparse.Namespace) -> int:
    from service.bootstrap.factory import Clients
    from service.bootstrap.metrics_dir import shared_metrics_directory

    # Set before prometheus-client is first imported (with the supervisor), which reads it.
    with shared_metrics_directory() as metrics_dir:
        from service.bootstrap.supervisor import serve_processes

        # Once, before any instance starts: with several, each would report it on its own line.
        asyncio.run(Clients(settings).check_postgres())
        return serve_processes(settings, metrics_dir)
