"""`fulfillment dlq redrive (TOPIC:PARTITION:OFFSET... | --all | --reason R) [--dry-run]
[--force]`: the latest letter of each original named, once, back to its original topic.

Two reads of the DLQ: the first finds each original's latest letter (`dlq.build_index`), the
second sends those letters as it meets them (`Redriver`). Refused, with the reason, and left on
the DLQ: a placeholder (its value is a pointer, not the message), and, unless `force`, a letter
older than the dedupe retention: the record that its event was decided (by an earlier redrive)
may have been pruned, so the event could be decided a second time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

from service.adapters.kafka.dead_letters import Redriver, scan
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from service.entrypoints import output
from service.entrypoints.dlq import Dlq, build_index, kind_text

RETENTION_SETTING = "FULFILLMENT_DEDUPE_RETENTION_SECONDS"


async def redrive_command(
    settings: Settings,
    clients: Clients,
    dlq: Dlq,
    *,
    reason: str | None,
    origins: Sequence[str],
    everything: bool,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> int:
    index = await build_index(dlq, origins)
    wanted: set[str] = set()
    if not everything and reason is None:
        missing = sorted(set(origins) - index.named.keys())
        if missing:
            print(f"fulfillment: no dead letter from {', '.join(missing)}")
            return output.NOT_FOUND
        wanted = {index.named[name][0] for name in origins}
    oldest = time.time() - settings.dedupe_retention_seconds
    chosen: dict[tuple[int, int], dict[str, Any]] = {}
    refused: list[dict[str, Any]] = []
    for original, chain in index.lineage.chains():
        latest = chain.latest
        if not (everything or latest["kind"] == reason or original in wanted):
            continue
        row = latest | {"attempts": chain.attempts, "sent_to": None}
        if latest["placeholder"]:
            refused.append(row | {"refused": _placeholder(row)})
        elif chain.failed_at < oldest and not force:
            refused.append(row | {"refused": _too_old(row, settings.dedupe_retention_seconds)})
        else:
            chosen[(chain.partition, chain.offset)] = row
    if not chosen and not refused:
        print("no dead letters to redrive")
        return output.NOT_FOUND
    if chosen and not dry_run:
        await _send(clients, dlq, chosen)
    _report(list(chosen.values()), refused, dry_run, as_json)
    return output.PARTLY if refused else output.OK


def _placeholder(row: dict[str, Any]) -> str:
    return (
        "a placeholder: the message was too large to copy to the dead-letter topic; it is "
        f"at {row['origin']} until that topic's retention deletes it"
    )


def _too_old(row: dict[str, Any], retention: int) -> str:
    return (
        f"dead-lettered at {row['failed_at']}, longer ago than the dedupe retention "
        f"({RETENTION_SETTING}={retention}): the record that it was decided may be gone, so it "
        "could be decided a second time; --force redrives it anyway"
    )


async def _send(clients: Clients, dlq: Dlq, chosen: dict[tuple[int, int], dict[str, Any]]) -> None:
    producer = clients.producer()
    await producer.start()
    try:
        redriver = Redriver(producer)
        left = len(chosen)
        async with aclosing(scan(dlq.consumer, dlq.ends)) as letters:
            async for letter in letters:
                row = chosen.get((letter.dlq_partition, letter.dlq_offset))
                if row is None:
                    continue
                await redriver.send(letter, row)
                left -= 1
                if not left:
                    break
        await redriver.flush()
    finally:
        await producer.stop()


def _report(
    sent: list[dict[str, Any]], refused: list[dict[str, Any]], dry_run: bool, as_json: bool
) -> None:
    if as_json:
        output.emit_json({"dry_run": dry_run, "redriven": sent, "refused": refused})
        return
    for row in sent:
        target = row["sent_to"] or (
            f"{row['source_topic']} (dry run: not sent)" if dry_run else "gone from the DLQ"
        )
        print(f"{_named(row)} -> {target}")
    for row in refused:
        print(f"{_named(row)} refused: {row['refused']}")


def _named(row: dict[str, Any]) -> str:
    return (
        f"{row['origin']} ({kind_text(row)}; original {row['original']}, "
        f"{row['attempts']} letter{'s' if row['attempts'] != 1 else ''})"
    )
