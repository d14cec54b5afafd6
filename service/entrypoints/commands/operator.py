"""What the operator commands (`parked`, `dlq`, `sessions`, `purge-stale`) share: the argument
types, `--json`, and a server's refusal as one line with exit code 1. Each prints text, or JSON
with `--json`; each that changes anything has `--dry-run`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any
from uuid import UUID

from service.config.redaction import mask_urls_in
from service.config.settings import Settings
from service.entrypoints import output


def uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UUID") from None


def rfc3339(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2026-11-24T09:30:00Z)")
    return value


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def refusing(settings: Settings, command: Coroutine[Any, Any, int]) -> int:
    """Runs one operator command; a server that refuses or cannot be reached ends in one line
    on stderr and exit code 1 (the database's own outages are the caller's to report)."""
    import asyncpg
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(command)
    except KafkaError as error:
        line = f"Kafka at {settings.kafka_bootstrap_servers}: {error}"
        output.error(mask_urls_in(line, settings.secrets))
        return output.FAILED
    except asyncpg.PostgresError as error:
        line = f"PostgreSQL refused: {error}"
        output.error(mask_urls_in(line, settings.secrets))
        return output.FAILED
