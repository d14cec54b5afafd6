"""Figures for reprocessing: how fast `rebuild` re-makes decisions, how long `restore` takes.

A history is made without the service: the simulated stream is decided by the real handlers on
the in-memory store, in arrival order, and both the inputs and the outputs that decided are
written to fresh topics, with the group committed at the inputs' ends, as a live run that had
caught up would leave them. Then `fulfillment restore` and `fulfillment rebuild` run against it,
each into a fresh database of the local server, and their own summaries are printed, with the
rates end to end (the command's exec to its exit: interpreter start, reading the topics,
deciding or writing, the comparison) judged against issue 24's targets.

    .venv/bin/python -m bench.reprocess --outputs 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from aiokafka import TopicPartition

import schemas
from bench import calibration
from bench.service_api import (
    Clients,
    MemoryDatabase,
    Simulation,
    create_topics,
    handle_batch,
    outbox_row,
    partition_for,
)
from bench.stack import FULFILLMENT, Databases, servers_from_env, service_env, settings_of
from service.config.settings import Settings

T0 = datetime(2030, 1, 7, 9, 30, tzinfo=UTC)  # ahead of the wall clock: no sweep is due
BATCH = 500
# Issue 24's targets, on a 200,000-output history, end to end.
REBUILD_TARGET = 10_000  # events/s
RESTORE_TARGET = 20_000  # outputs/s
TARGET_OUTPUTS = 200_000


async def history(settings: Settings, outputs: int, seed: int) -> tuple[int, int]:
    """Produces inputs until their decisions made `outputs` outputs; returns (inputs, outputs)."""
    sim = Simulation(max(50, outputs // 20), seed, topics=settings.topics)
    decoder = schemas.Decoder(settings.topics.input_types())
    store = MemoryDatabase().store()
    producer = Clients(settings).producer(linger_ms=20)
    await producer.start()
    sent_inputs = made = 0
    try:
        stream = sim.messages(T0, rate=50)
        while made < outputs:
            messages = [m for m in islice(stream, BATCH) if m.valid]
            events = [decoder.decode(m.value, m.topic) for m in messages]
            result = await handle_batch(store, events, policy=settings.policy)
            pending = [producer.send(m.topic, m.value, key=m.key) for m in messages]
            count = len(await producer.partitions_for(settings.topic_sessions))
            for emitted in result.emitted:
                row = outbox_row(emitted)
                pending.append(
                    producer.send(
                        settings.topic_sessions,
                        row.value,
                        key=row.key,
                        partition=partition_for(row.key, count),
                    )
                )
            await asyncio.gather(*[await p for p in pending])
            sent_inputs += len(messages)
            made += len(result.emitted)
    finally:
        await producer.stop()
    await _commit_ends(settings)
    return sent_inputs, made


async def _commit_ends(settings: Settings) -> None:
    clients = Clients(settings)
    consumer = clients.consumer()
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in settings.topics.input_types()
            for p in range(settings.topic_partitions)
        ]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def main(outputs: int, seed: int) -> None:
    servers = servers_from_env()
    suffix = uuid.uuid4().hex[:8]
    values = {
        "kafka_bootstrap_servers": servers.kafka,
        "database_url": servers.database_url,
        "group_id": f"bench-reprocess-{suffix}",
        "topic_payments": f"bench.payments.{suffix}",
        "topic_acceptances": f"bench.accepted.{suffix}",
        "topic_ended": f"bench.ended.{suffix}",
        "topic_sessions": f"bench.sessions.{suffix}",
        "topic_dlq": f"bench.dlq.{suffix}",
        "topic_partitions": 3,
        "log_level": "WARNING",
    }
    settings = settings_of(values)
    await create_topics(Clients(settings))
    databases = Databases(servers)
    try:
        started = time.monotonic()
        inputs, made = await history(settings, outputs, seed)
        print(f"history: {inputs} inputs, {made} outputs in {time.monotonic() - started:.1f} s")
        rates: dict[str, float] = {}
        for name in ("restore", "rebuild"):
            dsn = await databases.create(f"bench_{name}_{suffix}")
            load, speed = _load(), calibration.decode_microseconds()
            started = time.monotonic()
            # The command an operator runs, so the time includes its start.
            code, summary = await _command(values, name, "--database-url", dsn, "--json")
            seconds = time.monotonic() - started
            count = int(str(summary.get("outputs" if name == "restore" else "events", 0)))
            rates[name] = count / seconds if code == 0 else 0.0
            own = f"{summary.get('seconds', 0)} s by its own report"
            differ = f", {summary['differ']} differ" if "differ" in summary else ""
            print(
                f"{name}: exit {code}, {count:,} {'outputs' if name == 'restore' else 'events'}"
                f"{differ} in {seconds:.1f} s end to end ({own}): {rates[name]:,.0f}/s; "
                f"load average before {load}, after {_load()}; one payment decoded in "
                f"{speed:.2f} us before, {calibration.decode_microseconds():.2f} us after "
                "(bench/calibration.py: the box's speed drifts)"
            )
        print(f"targets (issue 24), on {made:,} outputs (the targets' history: {TARGET_OUTPUTS:,})")
        for name, unit, target in (
            ("rebuild", "events", REBUILD_TARGET),
            ("restore", "outputs", RESTORE_TARGET),
        ):
            text = f"{name} >= {target:,} {unit}/s end to end"
            ok = rates[name] >= target
            print(f"  {text:<42} {rates[name]:>12,.0f}/s {'met' if ok else 'NOT MET'}")
    finally:
        await databases.drop_all()
        # Its topics hold a few hundred thousand records each: not left on a shared broker.
        async with Clients(settings).started_admin() as admin:
            await admin.delete_topics(settings.topics.all())


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


async def _command(values: dict[str, Any], *args: str) -> tuple[int, dict[str, object]]:
    """Runs `fulfillment ARGS... --json` configured by `values`; its exit code and summary."""
    process = await asyncio.create_subprocess_exec(
        str(FULFILLMENT),
        *args,
        env=service_env(values),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    lines = output.decode(errors="replace").strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except ValueError:
        summary = {}
    return process.returncode if process.returncode is not None else -1, summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    asyncio.run(main(args.outputs, args.seed))
