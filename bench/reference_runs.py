"""The two references of a throughput run, each on its own database and topics, and what the
run prints and watches while any phase runs (`step`, `watching`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from bench.disturbance import Disturbance, Watching
from bench.kafka_io import produce_all
from bench.reference import Ceiling, PerEvent, find_pgbench, per_event, pgbench_ceiling
from bench.service_api import Clients, create_topics, payments_only
from bench.stack import Databases, Servers, overrides, settings_of
from service.config.settings import Settings


@contextlib.asynccontextmanager
async def watching(
    servers: Servers, suffix: str, into: dict[str, Disturbance], phase: str
) -> AsyncIterator[None]:
    """Records what else used the machine and the database server during `phase`."""
    async with Watching(servers, suffix) as watch:
        yield
    assert watch.result is not None
    into[phase] = watch.result


def step(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def reference_a(
    args: argparse.Namespace,
    servers: Servers,
    databases: Databases,
    suffix: str,
    used: list[Settings],
    disturbance: dict[str, Disturbance],
) -> PerEvent:
    name = f"bench_{suffix}_a"
    settings = settings_of(overrides(servers, await databases.create(name), f"{suffix}-a"))
    used.append(settings)
    await create_topics(Clients(settings))
    customers = max(1, args.ref_n // 4)
    messages = payments_only(
        args.ref_n,
        customers,
        start=datetime.now(UTC),
        seed=args.seed + 100,
        topic=settings.topic_payments,
    )
    await produce_all(servers.kafka, messages)
    step(f"reference (a): per-event consumer over {args.ref_n:,} payments")
    async with watching(servers, suffix, disturbance, "(a)"):
        result = await per_event(settings, args.ref_n, stall=args.stall)
    await databases.drop(name)
    step(f"reference (a): {result.rate:,.0f} events/s")
    return result


async def reference_b(
    args: argparse.Namespace,
    servers: Servers,
    databases: Databases,
    suffix: str,
    disturbance: dict[str, Disturbance],
) -> Ceiling | str:
    """The ceiling, or why there is none (pgbench missing or failing is not worth the run)."""
    pgbench = find_pgbench()
    if pgbench is None:
        step("reference (b): pgbench not found (Debian: postgresql-client); skipped")
        return "pgbench not found"
    name = f"bench_{suffix}_pg"
    dsn = await databases.create(name)
    step(f"reference (b): pgbench for {args.pgbench_seconds} s")
    try:
        async with watching(servers, suffix, disturbance, "(b)"):
            result: Ceiling | str = await pgbench_ceiling(
                pgbench, dsn, seconds=args.pgbench_seconds
            )
    except RuntimeError as error:
        step(f"reference (b): {error}")
        result = f"pgbench failed: {str(error).splitlines()[0]}"
    await databases.drop(name)
    if isinstance(result, Ceiling):
        step(f"reference (b): {result.rate:,.0f} events/s")
    # Give the server a moment to write out what pgbench dirtied before the drain starts.
    await asyncio.sleep(5)
    return result
