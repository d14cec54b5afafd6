"""`fulfillment migrate`: apply pending database migrations."""

from __future__ import annotations

import argparse
import asyncio

import structlog

from service.config.settings import Settings
from service.entrypoints.command import Subcommands


def add(commands: Subcommands) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "migrate", help="apply pending database migrations"
    )
    return parser


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> int:
    from service.adapters.postgres import migrate
    from service.bootstrap.factory import Clients

    pool = await Clients(settings).pool(size=1, bounded=False)
    try:
        async with pool.acquire() as conn:
            ran = await migrate.migrate(conn)
    finally:
        await pool.close()
    log = structlog.get_logger("service.migrate")
    log.info("migrated", applied=[f"{m.version:04d}_{m.name}" for m in ran])
    return 0
