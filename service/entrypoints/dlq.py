"""`fulfillment dlq list [--since T] [--reason R] | show TOPIC:PARTITION:OFFSET | redrive
(TOPIC:PARTITION:OFFSET... | --all | --reason R) [--dry-run] [--force]`.

Dead letters are named by their origin and grouped by their original (see
`adapters/kafka/dead_letters.py`): the letters of one message, redriven and failing again, form
its lineage, of which `list` shows the latest with how many letters it has. The commands stream
the DLQ: what they keep is one summary per distinct original (`core/letter_lineage.py`), never
the records themselves. A redrive (`dlq_redrive.py`) publishes the latest letter of each
original named, once; the running service then decodes it again: what is fixed is decided, what
still fails goes back to the DLQ, in the same lineage. The DLQ itself is never changed.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from service.adapters.kafka.admin import missing_topics, topic_partitions
from service.adapters.kafka.dead_letters import DeadLetter, scan
from service.adapters.kafka.topic_reader import partition_ends
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from service.core.letter_lineage import Lineage
from service.entrypoints import output


async def dlq_command(
    settings: Settings,
    action: str,
    *,
    since: datetime | None = None,
    reason: str | None = None,
    origins: Sequence[str] = (),
    everything: bool = False,
    dry_run: bool = False,
    force: bool = False,
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
        # Fixed once: every pass reads the same letters, whatever arrives meanwhile.
        dlq = Dlq(consumer, await partition_ends(consumer, list(partitions)))
        if action == "list":
            return await _list(dlq, since, reason, as_json)
        if action == "show":
            return await _show(dlq, origins[0], as_json)
        from service.entrypoints.dlq_redrive import redrive_command

        return await redrive_command(
            settings,
            clients,
            dlq,
            reason=reason,
            origins=origins,
            everything=everything,
            dry_run=dry_run,
            force=force,
            as_json=as_json,
        )
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class Dlq:
    """The dead-letter topic up to fixed ends, read by a started consumer in no group."""

    consumer: AIOKafkaConsumer
    ends: Mapping[TopicPartition, int]


@dataclass(slots=True)
class Index:
    """What one pass over the DLQ keeps: each original's latest letter (its `summary`) and
    number of letters, and where the names asked for are: name -> (original, DLQ partition,
    DLQ offset) of the last letter from that origin, or of the latest letter of that original."""

    lineage: Lineage[dict[str, Any]] = field(default_factory=Lineage)
    named: dict[str, tuple[str, int, int]] = field(default_factory=dict)


async def build_index(dlq: Dlq, names: Collection[str] = ()) -> Index:
    names = set(names)
    index = Index()
    async for d in scan(dlq.consumer, dlq.ends):
        index.lineage.add(
            d.original,
            summary(d),
            failed_at=d.failed_at_seconds,
            partition=d.dlq_partition,
            offset=d.dlq_offset,
        )
        if d.origin in names:
            index.named[d.origin] = (d.original, d.dlq_partition, d.dlq_offset)
    for name in names:
        chain = index.lineage.chain(name)
        if name not in index.named and chain is not None:
            index.named[name] = (name, chain.partition, chain.offset)
    return index


def summary(d: DeadLetter) -> dict[str, Any]:
    return {
        "origin": d.origin,
        "original": d.original,
        "source_topic": d.source_topic,
        "kind": d.kind,
        "reason": d.reason,
        "failed_at": d.failed_at,
        "placeholder": d.placeholder,
        "dlq": f"{d.dlq_partition}:{d.dlq_offset}",
    }


def kind_text(row: Mapping[str, Any]) -> str:
    return f"{row['kind']}, placeholder" if row["placeholder"] else str(row["kind"])


async def _list(dlq: Dlq, since: datetime | None, reason: str | None, as_json: bool) -> int:
    index = await build_index(dlq)
    rows = [
        chain.latest | {"attempts": chain.attempts}
        for _, chain in index.lineage.chains()
        if (reason is None or chain.latest["kind"] == reason)
        and (since is None or chain.failed_at >= since.timestamp())
    ]
    if as_json:
        output.emit_json(rows)
    elif rows:
        shown = [row | {"kind": kind_text(row), "latest": row["origin"]} for row in rows]
        columns = ["original", "attempts", "latest", "kind", "failed_at", "reason"]
        output.table(shown, columns)
    else:
        print("no dead letters")
    return output.OK


async def _show(dlq: Dlq, origin: str, as_json: bool) -> int:
    index = await build_index(dlq, [origin])
    if origin not in index.named:
        print(f"fulfillment: no dead letter from {origin}")
        return output.NOT_FOUND
    original, partition, offset = index.named[origin]
    chain = index.lineage.chain(original)
    assert chain is not None  # named only from a letter of it
    found: DeadLetter | None = None
    async with aclosing(scan(dlq.consumer, dlq.ends)) as letters:
        async for d in letters:
            if (d.dlq_partition, d.dlq_offset) == (partition, offset):
                found = d
                break
    if found is None:  # deleted by retention between the two reads
        print(f"fulfillment: no dead letter from {origin}")
        return output.NOT_FOUND
    detail = summary(found) | {
        "attempts": chain.attempts,
        "key": _text(found.key),
        "headers": {k: _text(v) for k, v in found.headers},
        "value": _text(found.value),
    }
    if as_json:
        output.emit_json(detail)
    else:
        for name, value in detail.items():
            print(f"{name}: {value}")
    return output.OK


def _text(value: bytes | None) -> str | None:
    """UTF-8 text as it is; anything else base64, marked."""
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()
