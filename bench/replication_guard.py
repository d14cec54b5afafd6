"""What FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY costs: payments (with the acceptances and ends
they call for) at a steady rate through the service on the local pair of `stack.sh up ha`, once
replicating synchronously with the setting on, once asynchronously with it off; prints the
latency from a payment's send to its outcome's arrival, p50 and p99, for each. Not a test.

    .venv/bin/python -m bench.replication_guard --rate 500 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg

from service.config.settings import Settings
from tests.fault.failover_stream import percentile, streaming
from tests.fault.ha_pair import exclusive, fresh_pair_database, stack
from tests.harness import running


async def measure(*, synchronous: bool, rate: float, seconds: float) -> list[float]:
    dsn = await fresh_pair_database()
    await stack("synchronous", "ha", "on" if synchronous else "off")
    suffix = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap_servers=os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        database_url=dsn,
        database_synchronous_standby=synchronous,
        group_id=f"bench-{suffix}",
        topic_payments=f"payments.completed.{suffix}",
        topic_acceptances=f"mechanics.accepted.{suffix}",
        topic_ended=f"sessions.ended.{suffix}",
        topic_sessions=f"sessions.events.{suffix}",
        topic_dlq=f"fulfillment.dlq.{suffix}",
        http_host="127.0.0.1",
        http_port=0,
        log_level="WARNING",
        sweeper_enabled=False,
    )
    async with (
        running(settings),
        streaming(settings, rate=rate, seconds=seconds, customers=400) as (stream, sending),
    ):
        await sending
        for _ in range(600):
            if len(stream.outcome_of()) >= len(stream.sent_at):
                break
            await asyncio.sleep(0.1)
    # The first seconds warm the service up (connections, metadata, the first rebalance).
    first = min(stream.sent_at.values())
    return stream.latencies_ms(since=first + 3.0)


async def commit_latencies(*, synchronous: bool, commits: int) -> list[float]:
    """One-row commits, one after another, on the pair's primary: the guard's cost alone."""
    dsn = await fresh_pair_database()
    await stack("synchronous", "ha", "on" if synchronous else "off")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit TO on")
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_commits (n int)")
        found = []
        for n in range(commits):
            began = time.perf_counter()
            await conn.execute("INSERT INTO bench_commits VALUES ($1)", n)
            found.append((time.perf_counter() - began) * 1000)
    finally:
        await conn.close()
    return sorted(found)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replication_guard", description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="each setting, alternating")
    parser.add_argument(
        "--commits", type=int, default=0, help="time this many one-row commits instead"
    )
    args = parser.parse_args()
    async with exclusive():
        await run(args)


async def run(args: argparse.Namespace) -> None:
    try:
        if args.commits:
            for round_ in range(args.rounds):
                for synchronous in (False, True):
                    found = await commit_latencies(synchronous=synchronous, commits=args.commits)
                    name = "synchronous" if synchronous else "asynchronous"
                    print(
                        f"round {round_ + 1} {name} commit: p50 {percentile(found, 0.5):.2f} ms, "
                        f"p99 {percentile(found, 0.99):.2f} ms",
                        flush=True,
                    )
            return
        for round_ in range(args.rounds):
            for synchronous in (False, True):
                found = await measure(synchronous=synchronous, rate=args.rate, seconds=args.seconds)
                name = "synchronous standby, setting on" if synchronous else "asynchronous"
                print(
                    f"round {round_ + 1} {name}: {len(found)} payments, "
                    f"p50 {percentile(found, 0.5):.1f} ms, p99 {percentile(found, 0.99):.1f} ms",
                    flush=True,
                )
    finally:
        await stack("down", "ha")


if __name__ == "__main__":
    asyncio.run(main())
