"""`fulfillment`: the command line. Parses with the commands of `table.py`, loads the settings,
sets up logging, reaches the servers the command needs and runs it; a failure a person can fix
ends in one line on stderr and its exit code (`output.py`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib.metadata import version

from service.config.settings import ConfigurationError, Settings, load_settings
from service.entrypoints import output
from service.entrypoints.command import Command, Server
from service.entrypoints.table import BY_NAME, COMMANDS


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="fulfillment",
        description="Session fulfillment: payments in, sessions out, one active session per "
        "customer. Configured by FULFILLMENT_* environment variables (see README).",
    )
    root.add_argument(
        "--version", action="version", version=f"%(prog)s {version('session-fulfillment')}"
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = BY_NAME[args.command]
    if command.offline is not None:
        return command.offline(args)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        output.error(f"invalid configuration: {error}")
        return output.INVALID
    from service.observe.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
    try:
        return run(command, settings, args)
    except KeyboardInterrupt:
        return output.INTERRUPTED
    except ConfigurationError as error:
        output.error(f"invalid configuration: {error}")
        return output.INVALID
    except Exception as error:
        from service.bootstrap.fixable import one_line

        line = one_line(error, settings)
        if line is None:
            raise
        output.error(line)
        return output.FAILED


def run(command: Command, settings: Settings, args: argparse.Namespace) -> int:
    assert command.run is not None  # an offline command ran before the settings were loaded
    if Server.KAFKA in command.needs:
        from service.bootstrap.factory import Clients

        # One connection first, to report a refusal's cause (Clients.pool does the same for
        # PostgreSQL when the command opens it).
        asyncio.run(Clients(settings).check_kafka())
    return command.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
