"""The consumer's per-batch work in one process, without Kafka: client CPU per event.

    .venv/bin/python -m bench.hot_path [--n 100000] [--batch 2000] [--profile out.prof]

Payments (`payments_only`, over n/4 customers) are encoded as a producer sends them, then
decoded, decided by `handle_batch` on a fresh PostgreSQL database and logged and counted as the
consumer loop does (`log_decisions`, `batch_metrics`), one batch after another on one
connection. It prints the process's CPU time per event (user + system, which includes asyncpg's
socket calls but not PostgreSQL's own work) and the wall time, split by step. It needs the
servers of `make up` (`TEST_DATABASE_URL`), and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import sys
import time
import uuid
from datetime import UTC, datetime

from pydantic import SecretStr

import schemas
from bench.service_api import (
    Clients,
    PostgresStore,
    batch_metrics,
    configure_logging,
    handle_batch,
    log_decisions,
    payments_only,
    return_large_buffers,
    tune_garbage_collector,
)
from bench.stack import Databases, servers_from_env
from service.config.settings import Settings


async def run(n: int, batch: int, profile: str | None) -> None:
    servers = servers_from_env()
    databases = Databases(servers)
    name = f"bench_hot_{uuid.uuid4().hex[:8]}"
    settings = Settings()
    policy = settings.policy
    decoder = schemas.Decoder(settings.topics.input_types())
    messages = payments_only(n, max(1, n // 4), datetime.now(UTC), seed=7)
    topic = settings.topics.payments_completed
    # The service's log format and level; run it with stderr sent to a file, as the bench does.
    configure_logging("INFO", "json")
    tune_garbage_collector()  # as the service does once it has started
    return_large_buffers()
    try:
        dsn = await databases.create(name)
        # The service's own pool settings, on one connection.
        pool = await Clients(settings.model_copy(update={"database_url": SecretStr(dsn)})).pool(
            size=1
        )
        conn = await pool.acquire()
        store = PostgresStore(conn)
        steps = {"decode": 0.0, "handle_batch": 0.0, "log+metrics": 0.0}
        profiler = cProfile.Profile() if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for start in range(0, n, batch):
            t0 = time.perf_counter()
            events = [decoder.decode(m.value, topic) for m in messages[start : start + batch]]
            t1 = time.perf_counter()
            result = await handle_batch(store, events, policy=policy)
            t2 = time.perf_counter()
            log_decisions(result.decisions, {})
            batch_metrics.record_decided(events, result)
            batch_metrics.record_batch(len(events), t2 - t0)
            t3 = time.perf_counter()
            steps["decode"] += t1 - t0
            steps["handle_batch"] += t2 - t1
            steps["log+metrics"] += t3 - t2
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await pool.release(conn)
        await pool.close()
        print(f"{n:,} payments in batches of {batch:,}, one connection")
        print(f"client CPU {cpu / n * 1e6:.1f} us/event; wall {wall / n * 1e6:.1f} us/event")
        print(
            "wall by step (us/event): "
            + ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in steps.items())
        )
        if profiler and profile:
            profiler.dump_stats(profile)
            out = io.StringIO()
            import pstats

            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue(), file=sys.stdout)
    finally:
        await databases.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--profile", help="write cProfile stats here and print the top")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.batch, args.profile))


if __name__ == "__main__":
    main()
