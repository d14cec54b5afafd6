"""Every `fulfillment` command, in one table: its module (arguments, the call to what it runs)
and the servers it needs. The order is the order of `fulfillment --help`."""

from __future__ import annotations

import argparse
import asyncio

from service.config.settings import Settings
from service.entrypoints.command import Command, Server
from service.entrypoints.commands import (
    dlq,
    migrate,
    parked,
    purge_stale,
    replay,
    run,
    schemas_export,
    sessions,
    simulate,
)
from service.entrypoints.reprocess_args import add_rebuild, add_restore, run_reprocess

KAFKA = frozenset({Server.KAFKA})
POSTGRES = frozenset({Server.POSTGRES})
BOTH = KAFKA | POSTGRES


def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(run_reprocess(settings, args))


COMMANDS: tuple[Command, ...] = (
    Command("run", run.add, run.run, needs=BOTH),
    Command("migrate", migrate.add, migrate.run, needs=POSTGRES),
    Command("schemas", schemas_export.add, offline=schemas_export.offline),
    Command("simulate", simulate.add, simulate.run, needs=KAFKA),
    Command("replay", replay.add, replay.run, needs=KAFKA),
    Command("rebuild", add_rebuild, _reprocess, needs=BOTH),
    Command("restore", add_restore, _reprocess, needs=BOTH),
    Command("parked", parked.add, parked.run, needs=POSTGRES),
    Command("sessions", sessions.add, sessions.run, needs=POSTGRES),
    Command("dlq", dlq.add, dlq.run, needs=KAFKA),
    Command("purge-stale", purge_stale.add, purge_stale.run, needs=POSTGRES),
)
BY_NAME = {command.name: command for command in COMMANDS}
