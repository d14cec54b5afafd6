"""Turning what the run left into the checker's plain data: `sessions.events` and the DLQ read
from the beginning, and the final rows read from the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

import schemas
from tests.proof.history import Database, Letter, Published


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def published(record: Any) -> Published:
    """A ConsumerRecord of `sessions.events` (structured mode, the service's default)."""
    event = orjson.loads(record.value)
    return Published(
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode() if record.key is not None else None,
        value=record.value,
        id=event["id"],
        type=event["type"],
        time=datetime.fromisoformat(event["time"]),
        published_at=_at(record.timestamp),
        causationid=event.get("causationid"),
        causationsource=event.get("causationsource"),
        data=event.get("data", {}),
    )


def letter(record: Any) -> Letter:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    return Letter(
        value=record.value or b"",
        kind=headers.get(schemas.DLQ_ERROR_KIND, "?"),
        placeholder=headers.get(schemas.DLQ_PLACEHOLDER) == "true",
    )


def published_all(records: Iterable[Any]) -> list[Published]:
    return [published(r) for r in records]


async def database(dsn: str) -> Database:
    conn = await asyncpg.connect(dsn)
    try:
        sessions = await conn.fetch(
            "SELECT id, customer_id, payment_id, status, expires_at, mechanic_id, accepted_at, "
            "closed_at FROM sessions"
        )
        payments = await conn.fetch("SELECT payment_id, outcome, session_id FROM payments")
        processed = await conn.fetch("SELECT source, event_id FROM processed_events")
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
        parked = await conn.fetchval("SELECT count(*) FROM parked_events")
    finally:
        await conn.close()
    return Database(
        sessions=[dict(r) for r in sessions],
        payments=[dict(r) for r in payments],
        processed=frozenset((r["source"], r["event_id"]) for r in processed),
        outbox_rows=outbox,
        parked_events=parked,
    )


def refused_commits(run_dir: Path) -> int:
    """Offset commits the instances logged as refused (a rebalance gave the partitions away
    first): the next owner does those batches again, and may letter their inputs again."""
    marker = b'"event":"offset_commit_refused"'
    return sum(path.read_bytes().count(marker) for path in run_dir.glob("instance-*.log"))
