"""`fulfillment`: the command line. Each command loads settings, sets up logging, and runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import structlog

from service.entrypoints.operator_cli import (
    COMMANDS,
    add_operator_commands,
    run_operator_command,
)
from service.settings import ConfigurationError, Settings, load_settings

# Commands that talk to Kafka: each first makes one connection, to report a refusal's cause.
KAFKA_COMMANDS = frozenset({"run", "simulate", "replay", "dlq", "rebuild", "restore"})


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2026-11-24T09:30:00Z)")
    return value


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
    commands.add_parser("run", help="consume, decide and publish until SIGINT/SIGTERM")
    commands.add_parser("migrate", help="apply pending database migrations")
    schemas_cmd = commands.add_parser("schemas", help="the published contract artifacts")
    schemas_sub = schemas_cmd.add_subparsers(dest="schemas_command", required=True)
    schemas_sub.add_parser("export", help="regenerate schemas/json/*.schema.json and asyncapi.yaml")

    simulate = commands.add_parser(
        "simulate", help="produce a realistic mixed stream and print outcomes as they arrive"
    )
    simulate.add_argument("--rate", type=float, default=20.0, help="input events per second")
    simulate.add_argument("--customers", type=int, default=50, help="distinct customers")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds to produce for")
    simulate.add_argument(
        "--seed", type=int, default=None, help="random seed, for a repeatable run"
    )

    replay = commands.add_parser(
        "replay", help="reset the consumer group's offsets on the input topics to reprocess"
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="from the start of each topic")
    target.add_argument("--to-datetime", type=_datetime, metavar="T", help="RFC 3339 time")
    from service.entrypoints.replay_args import add_replay_arguments

    add_replay_arguments(replay, target)
    from service.entrypoints.reprocess_args import add_reprocess_commands

    add_reprocess_commands(commands)
    add_operator_commands(commands)
    return root


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


def _export() -> int:
    import schemas
    from schemas.export import export

    for path in export(Path(schemas.__file__).parent):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "schemas":
        return _export()
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"fulfillment: invalid configuration: {error}", file=sys.stderr)
        return 2
    from service.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
    try:
        return _command(args, settings)
    except KeyboardInterrupt:
        return 130
    except ConfigurationError as error:
        print(f"fulfillment: invalid configuration: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from service.bootstrap.fixable import one_line

        line = one_line(error, settings)
        if line is None:
            raise
        print(f"fulfillment: {line}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in KAFKA_COMMANDS:
        from service.bootstrap.factory import Clients

        asyncio.run(Clients(settings).check_kafka())
    if args.command == "run":
        from service.bootstrap.factory import Clients
        from service.bootstrap.metrics_dir import shared_metrics_directory

        # Set before prometheus-client is first imported (with the supervisor), which reads it.
        with shared_metrics_directory() as metrics_dir:
            from service.bootstrap.supervisor import serve_processes

            # Once, before any instance starts: with several, each would report it on its own
            # line.
            asyncio.run(Clients(settings).check_postgres())
            return serve_processes(settings, metrics_dir)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command in COMMANDS:
        return run_operator_command(settings, args)
    if args.command == "simulate":
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
    if args.command in ("rebuild", "restore"):
        from service.entrypoints.reprocess_args import run_reprocess

        return asyncio.run(run_reprocess(settings, args))
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


if __name__ == "__main__":
    sys.exit(main())
