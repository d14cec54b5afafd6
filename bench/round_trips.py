"""The deciding transaction's round trips to PostgreSQL, counted and timed, one batch of one
payment at a time, as the service decides at a low rate: no Kafka, no relay.

    .venv/bin/python -m bench.round_trips [--n 600] [--customers new|repeat]

Each batch takes a connection from a pool with the service's settings, calls `handle_batch` and
gives the connection back (the pool's reset included), as `build_decider` does. asyncpg's
protocol object of that one connection is wrapped to count and time each request that waits for
an answer: `bind_execute` (a statement with parameters), `query` (a simple query, named by its
first word), `copy_in` (a COPY). The store is given a local relay that does not lead, as in the
instance whose relay is another's: every commit that wrote outbox rows is announced by `NOTIFY`
(the service leaves it out in the instance whose relay leads). The first
50 batches warm up and are not counted. Prints the wall time per batch (p50, p90, p99) and the
requests per batch with their mean time. Needs the servers of `make up`; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

import schemas
from bench.service_api import Clients, PostgresStore, handle_batch, payments_only
from bench.stack import Databases, servers_from_env
from service.config.settings import Settings

WARM_UP = 50
TIMED = ("query", "bind_execute", "copy_in", "bind_execute_many")


class Follower:
    """A local relay that does not lead: the commits it is told of are only counted."""

    leads = False

    def __init__(self) -> None:
        self.commits = 0

    def committed(self, at: float) -> None:
        self.commits += 1


class Counted:
    """asyncpg's protocol object, with the requests that wait for an answer counted and timed."""

    def __init__(self, inner: Any, calls: Counter[str], seconds: dict[str, float]) -> None:
        self._inner, self._calls, self._seconds = inner, calls, seconds

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in TIMED:
            return attribute
        return self._timed(name, attribute)

    def _timed(self, name: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            label = f"{name} {str(args[0]).split()[0]}" if name == "query" else name
            began = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                self._calls[label] += 1
                self._seconds[label] = self._seconds.get(label, 0.0) + time.perf_counter() - began

        return timed


async def run(n: int, repeat: bool) -> None:
    databases = Databases(servers_from_env())
    settings = Settings()
    decoder = schemas.Decoder(settings.topics.input_types())
    customers = max(1, n // 4) if repeat else n
    messages = payments_only(n + WARM_UP, customers, datetime.now(UTC), seed=7)
    topic = settings.topics.payments_completed
    calls: Counter[str] = Counter()
    seconds: dict[str, float] = {}
    try:
        dsn = await databases.create(f"bench_trips_{uuid.uuid4().hex[:8]}")
        pool = await Clients(settings.model_copy(update={"database_url": SecretStr(dsn)})).pool(
            size=1
        )
        async with pool.acquire() as conn:
            raw: Any = conn._con  # type: ignore[attr-defined]  # the proxy's connection
            raw._protocol = Counted(raw._protocol, calls, seconds)
        walls = []
        relay = Follower()
        for i, message in enumerate(messages):
            if i == WARM_UP:
                calls.clear()
                seconds.clear()
            events = [decoder.decode(message.value, topic)]
            began = time.perf_counter()
            async with pool.acquire() as conn:
                await handle_batch(PostgresStore(conn, relay), events, policy=settings.policy)
            walls.append(time.perf_counter() - began)
        await pool.close()
    finally:
        await databases.drop_all()
    q = statistics.quantiles(walls[WARM_UP:], n=100)
    print(
        f"{n:,} batches of one payment ({'repeat' if repeat else 'new'} customers): wall per "
        f"batch p50 {q[49] * 1e3:.2f} ms, p90 {q[89] * 1e3:.2f}, p99 {q[98] * 1e3:.2f}"
    )
    print(f"requests per batch: {sum(calls.values()) / n:.2f}")
    for label, count in calls.most_common():
        print(
            f"  {label:24s} {count / n:5.2f} per batch, {seconds[label] / count * 1e3:.3f} ms each"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--customers", choices=("new", "repeat"), default="new")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.customers == "repeat"))


if __name__ == "__main__":
    main()
