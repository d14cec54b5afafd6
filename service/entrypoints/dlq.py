"""`fulfillment dlq list [--since T] [--reason R] | show TOPIC:PARTITION:OFFSET | redrive
(TOPIC:PARTITION:OFFSET... | --all | --reason R) [--dry-run]`.

Dead letters are named by their origin (see `adapters/kafka/dead_letters.py`). A redrive
publishes the original bytes, key and headers, without the `fulfillment-*` error headers, to the
original topic through the service's producer; the running service then decodes it again: what
is fixed is decided (once: every event is claimed by its CloudEvents identity), what still fails
goes back to the DLQ with fresh error headers. The DLQ itself is never changed.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.adapters.kafka.admin import missing_topics, topic_partitions
from service.adapters.kafka.dead_letters import DeadLetter, read_dead_letters, redrive
from service.bootstrap.factory import Clients
from service.entrypoints import report
from service.settings import Settings


async def dlq_command(
    settings: Settings,
    action: str,
    *,
    since: datetime | None = None,
    reason: str | None = None,
    origins: Sequence[str] = (),
    everything: bool = False,
    dry_run: bool = False,
    as_json: bool = False,
) -> int:
    clients = Clients(settings)
    topic = settings.topics.dlq
    async with clients.started_admin() as admin:
        # Describing a missing topic would create it where auto-creation is on.
        partitions = (
            [] if await missing_topics(admin, [topic]) else await topic_partitions(admin, [topic])
        )
    consumer = clients.consumer(group_id=None)
    await consumer.start()
    # Let the consumer's background task start: stopping it before it ever ran makes aiokafka's
    # stop() raise CancelledError.
    await asyncio.sleep(0)
    try:
        letters = await read_dead_letters(consumer, partitions, since=since)
    finally:
        await consumer.stop()
    if reason is not None:
        letters = [d for d in letters if d.kind == reason]
    if action == "list":
        return _list(letters, as_json)
    if action == "show":
        return _show(letters, origins[0], as_json)
    if not everything and reason is None:
        wanted = set(origins)
        missing = sorted(wanted - {d.origin for d in letters})
        if missing:
            print(f"fulfillment: no dead letter from {', '.join(missing)}")
            return report.NOT_FOUND
        letters = [d for d in letters if d.origin in wanted]
    if not letters:
        print("no dead letters to redrive")
        return report.NOT_FOUND
    return await _redrive(clients, letters, dry_run, as_json)


def _summary(d: DeadLetter) -> dict[str, Any]:
    return {
        "origin": d.origin,
        "source_topic": d.source_topic,
        "kind": d.kind,
        "reason": d.reason,
        "failed_at": d.failed_at,
        "dlq": f"{d.dlq_partition}:{d.dlq_offset}",
    }


def _list(letters: Sequence[DeadLetter], as_json: bool) -> int:
    rows = [_summary(d) for d in letters]
    if as_json:
        report.emit_json(rows)
    elif rows:
        report.table(rows, ["origin", "kind", "failed_at", "reason"])
    else:
        print("no dead letters")
    return report.OK


def _show(letters: Sequence[DeadLetter], origin: str, as_json: bool) -> int:
    found = [d for d in letters if d.origin == origin]
    if not found:
        print(f"fulfillment: no dead letter from {origin}")
        return report.NOT_FOUND
    (d,) = found[-1:]
    detail = _summary(d) | {
        "key": _text(d.key),
        "headers": {k: _text(v) for k, v in d.headers},
        "value": _text(d.value),
    }
    if as_json:
        report.emit_json(detail)
    else:
        for name, value in detail.items():
            print(f"{name}: {value}")
    return report.OK


def _text(value: bytes | None) -> str | None:
    """UTF-8 text as it is; anything else base64, marked."""
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


async def _redrive(
    clients: Clients, letters: Sequence[DeadLetter], dry_run: bool, as_json: bool
) -> int:
    if dry_run:
        sent: list[tuple[DeadLetter, str | None]] = [(d, None) for d in letters]
    else:
        producer = clients.producer()
        await producer.start()
        try:
            sent = [(d, landed) for d, landed in await redrive(producer, letters)]
        finally:
            await producer.stop()
    rows = [_summary(d) | {"sent_to": landed} for d, landed in sent]
    if as_json:
        report.emit_json({"dry_run": dry_run, "redriven": rows})
    else:
        for row in rows:
            target = row["sent_to"] or f"{row['source_topic']} (dry run: not sent)"
            print(f"{row['origin']} ({row['kind']}) -> {target}")
    return report.OK
