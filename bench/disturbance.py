"""Was anyone else using the machine during a phase? The box is shared (other people's test
runs create a database per test, and each CREATE/DROP DATABASE forces a checkpoint), so each
figure comes with what else ran while it was measured."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from types import TracebackType

import asyncpg

from bench.procstats import cpu_between, cpu_snapshot
from bench.stack import Servers

# Client sessions in databases other than the benchmark's own (named bench_<suffix>...).
FOREIGN_SESSIONS = (
    "SELECT datname FROM pg_stat_activity WHERE backend_type = 'client backend' "
    "AND pid <> pg_backend_pid() AND datname IS NOT NULL AND datname NOT LIKE $1"
)


@dataclass(frozen=True, slots=True)
class Disturbance:
    other_cores: float  # CPU of processes that are neither ours, PostgreSQL nor Kafka
    foreign_databases: int  # distinct other databases that had a client session
    peak_foreign_sessions: int

    @property
    def quiet(self) -> bool:
        return self.other_cores < 0.05 and self.foreign_databases == 0

    def __str__(self) -> str:
        return (
            f"other cpu {self.other_cores:.2f} cores, {self.foreign_databases} other databases "
            f"in use (peak {self.peak_foreign_sessions} sessions)"
        )


class Watching:
    """`async with Watching(servers, suffix) as w:` ... then `w.result`. Samples every 0.5 s."""

    def __init__(self, servers: Servers, suffix: str) -> None:
        self._servers = servers
        self._pattern = f"bench\\_{suffix}%"
        self._databases: set[str] = set()
        self._peak = 0
        self._task: asyncio.Task[None] | None = None
        self.result: Disturbance | None = None

    async def __aenter__(self) -> Watching:
        self._conn = await asyncpg.connect(self._servers.database_url)
        self._before = cpu_snapshot(time.monotonic())
        self._task = asyncio.create_task(self._sample(), name="disturbance")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._conn.close()
        cpu = cpu_between(self._before, cpu_snapshot(time.monotonic()))
        self.result = Disturbance(cpu["other"], len(self._databases), self._peak)

    async def _sample(self) -> None:
        while True:
            rows = await self._conn.fetch(FOREIGN_SESSIONS, self._pattern)
            self._databases.update(r["datname"] for r in rows)
            self._peak = max(self._peak, len(rows))
            await asyncio.sleep(0.5)
