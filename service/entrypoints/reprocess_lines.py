"""The lines `fulfillment rebuild` and `fulfillment restore` both print: a failure a person can
fix, and a parked event."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from service.config.settings import Settings
from service.reprocess.changelog import UnreadableOutput
from service.reprocess.history import MissingTopic
from service.reprocess.rebuild_parts import WorkerFailed
from service.reprocess.restore_state import Inconsistent


def failure_line(error: Exception, settings: Settings) -> str | None:
    """The one line a rebuild or a restore prints for a failure a person can fix (then exits
    1), or None for anything else, which is a bug and keeps its traceback."""
    match error:
        case MissingTopic():
            return f"no such topic: {error}"
        case UnreadableOutput() | Inconsistent():
            return f"{settings.topics.sessions_events}: {error}"
        case KafkaError():
            return f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {error!r}"
        case asyncpg.PostgresError() | OSError():
            return f"the database of --database-url failed: {error}"
        case WorkerFailed():  # killed, or out of memory: its own error, if any, is on stderr
            return str(error)
    return None


def parked_line(row: dict[str, Any]) -> str:
    who = row["customer_id"] or "no customer"
    what = f"{row['event_id']} ({row['type']} from {row['source']})"
    return f"  parked: {what} of {who}: {row['reason']}"
