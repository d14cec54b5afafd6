"""The watch loop: once an interval, off the hot path, asks PostgreSQL and Kafka whether they
answer and reads what only they know (outbox backlog, consumer lag), for readiness and metrics.

Each check is bounded by the interval, so an outage that makes a call hang reads as a failure
within two intervals. A database that answers but takes no writes, or a URL none of whose hosts
is the primary, is named as a failover (`failover: ...`) while it lasts. Raises nothing out of
`run`: a failed check is a readiness problem.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from asyncpg.exceptions import ReadOnlySQLTransactionError

from service.adapters.failures import FAILOVER
from service.adapters.postgres import sql
from service.adapters.postgres.pool import Pool, connection
from service.observe import metrics
from service.observe.health import NOT_CHECKED, Health

log = structlog.get_logger("service.watch")

POSTGRESQL = "postgresql"
KAFKA = "kafka"


class Watch:
    def __init__(
        self,
        *,
        interval: float,
        pool: Pool,
        kafka: Any,  # the instance's producer owner (ProducerOwner): `check_broker()`
        consumers: Sequence[AIOKafkaConsumer],
        health: Health,
    ) -> None:
        self._interval = interval
        self._pool = pool
        self._kafka = kafka
        self._consumers = consumers
        self._health = health
        self._stopping = asyncio.Event()
        self._lag_series: set[tuple[str, str]] = set()
        health.expect(POSTGRESQL, KAFKA)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.check_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def check_once(self) -> None:
        await asyncio.gather(
            self._check(POSTGRESQL, self._database), self._check(KAFKA, self._broker)
        )
        await self._lag()

    async def _check(self, name: str, probe: Callable[[], Any]) -> None:
        before = self._health.problems().get(name)
        try:
            async with asyncio.timeout(self._interval):
                await probe()
        except Exception as error:  # any failure to answer is the answer
            problem = f"{error.__class__.__name__}: {error}" if str(error) else repr(error)
            if isinstance(error, FAILOVER):
                problem = f"failover: {problem}"
            if before is None or before == NOT_CHECKED:
                log.warning("dependency_unavailable", dependency=name, error=problem)
            self._health.checked(name, problem)
            return
        if before is not None and before != NOT_CHECKED:
            log.info("dependency_available", dependency=name)
        self._health.checked(name, None)

    async def _database(self) -> None:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(sql.OUTBOX_BACKLOG)
            assert row is not None
            if row["read_only"]:
                # Reads work, so nothing else would notice; the pool drops its connections.
                raise ReadOnlySQLTransactionError(
                    "the database takes no writes (a demoted primary or a standby): "
                    "connecting anew to find the primary"
                )
        metrics.outbox_backlog.set(row["rows"])
        metrics.outbox_oldest_age_seconds.set(row["oldest_age"])

    async def _broker(self) -> None:
        await self._kafka.check_broker()

    async def _lag(self) -> None:
        """High watermark minus position, for the partitions this instance's consumers own."""
        seen: set[tuple[str, str]] = set()
        for consumer in self._consumers:
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                if high is None:  # nothing fetched from it yet
                    continue
                try:
                    async with asyncio.timeout(self._interval):
                        position = await consumer.position(tp)
                except Exception:  # revoked meanwhile, or no position yet: next time
                    continue
                labels = (tp.topic, str(tp.partition))
                metrics.consumer_lag.labels(*labels).set(max(0, high - position))
                seen.add(labels)
        # A partition this instance no longer owns reads 0 rather than disappearing: with
        # several instances the service's lag is their sum (metrics.py), and prometheus-client
        # cannot remove a series another process's sum reads.
        for gone in self._lag_series - seen:
            metrics.consumer_lag.labels(*gone).set(0)
        self._lag_series = seen
