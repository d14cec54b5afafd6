"""The phases of the throughput bench before its latency phase: a service started idle, or N
payments preloaded and drained; and the pause between the drain and the latency phase."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from datetime import UTC, datetime

from bench.drain import Aborted, drain
from bench.kafka_io import OutcomeReader, produce_all
from bench.procstats import RssWatch
from bench.reference_runs import step, watching
from bench.report import Figures
from bench.service_api import payments_only
from bench.service_proc import ServiceProcess
from bench.stack import Servers
from bench.stages import ready
from service.config.settings import Settings


async def start_idle(service: ServiceProcess, port: int, stall: float) -> RssWatch:
    """Starts the service on empty topics and waits until it is ready. Raises Aborted if it is
    not within `stall` seconds."""
    step(f"latency only: starting the service (log: {service.log_path})")
    await service.start()
    watch = RssWatch(service.pid)
    watch.start()
    try:
        await ready(port, within=stall)
    except TimeoutError:
        raise Aborted(f"the service was not ready within {stall:.0f} s") from None
    return watch


async def preload_and_drain(
    args: argparse.Namespace,
    servers: Servers,
    settings: Settings,
    service: ServiceProcess,
    figures: Figures,
    suffix: str,
) -> RssWatch:
    """N payments preloaded, then the service started on them and timed until all are decided
    and published (figures.drain). Returns the RSS watch, still running."""
    customers = max(1, args.n // 4)
    step(f"drain: preloading {args.n:,} payments over {customers:,} customers")
    messages = payments_only(
        args.n, customers, start=datetime.now(UTC), seed=args.seed, topic=settings.topic_payments
    )
    figures.preload_seconds = await produce_all(servers.kafka, messages)
    del messages
    reader = OutcomeReader(servers.kafka, settings.topic_sessions)
    await reader.start(partitions=settings.topic_partitions, from_end=False)
    step(f"drain: starting the service (log: {service.log_path})")
    try:
        async with watching(servers, suffix, figures.disturbance, "drain"):
            figures.drain, watch = await drain(service, reader, args.n, stall=args.stall)
    finally:
        await reader.stop()
    step(f"drain: {figures.drain.rate:,.0f} events/s; latency phase")
    return watch


async def quiet_heap_and_disk() -> float:
    """Between the drain and the latency phase; returns the seconds the disk flush took."""
    # The bench's own pauses must not count as the service's latency: what the drain left
    # in this process's heap goes to the permanent generation, out of the collector's way.
    gc.collect()
    gc.freeze()
    # Nor the drain's own disk writes: the kernel writes dirty pages back about 30 s after
    # they were written (vm.dirty_expire_centisecs), hundreds of MB at once after a drain,
    # and PostgreSQL's WAL fsyncs queue behind that. Flush them now, between the phases.
    flushed = time.perf_counter()
    await asyncio.to_thread(os.sync)
    return time.perf_counter() - flushed
