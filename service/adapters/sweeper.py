"""The sweeper: every `sweep_interval`, in every instance, closes what is overdue even when no
event for that customer ever comes again, and prunes dedupe records past their retention.

The wall clock only says *which* deadlines are due; what is decided (ids, times, payloads) comes
from the sessions, exactly as the purge inside a customer's transaction decides it. Several
instances sweeping at once queue on the customers' locks (taken in id order, like any batch),
and a session's status is read under its customer's lock, so each expiry is decided once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog

from service.adapters.failures import TRANSIENT
from service.adapters.retry import count_retry
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.ports import Store
from service.observe import metrics
from service.observe.health import Health
from service.observe.logs import log_decisions
from service.observe.parked_metrics import record_parked

log = structlog.get_logger("service.sweeper")

SWEEP_CHUNK = 500
PRUNE_CHUNK = 10_000

# Closes the due sessions of the given customers at `now`, in one transaction of the store's.
SweepCustomers = Callable[[Store, Sequence[UUID], datetime], Awaitable[BatchResult]]


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], AbstractAsyncContextManager[Store]],
        sweep: SweepCustomers,
        *,
        on_committed: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        health: Health | None = None,
    ) -> None:
        self._health = health or Health()
        self._settings = settings
        self._open_store = open_store
        self._sweep = sweep
        self._on_committed = on_committed
        self._clock = clock
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep_once()
                await self.prune_once()
                self._health.recovered("sweep")
                await self.count_parked()
            except TRANSIENT as error:
                log.warning("sweep_retry", error=repr(error))
                self._failed(error)
            except Exception as error:  # a bug: loud, and tried again at the next interval
                log.exception("sweep_failed")
                self._failed(error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.sweep_interval_seconds)

    async def sweep_once(self) -> list[BatchResult]:
        now = self._clock()
        results = []
        async with self._open_store() as store:
            while True:
                due = await store.due_customers(
                    now=now, max_live=self._settings.max_live, limit=SWEEP_CHUNK
                )
                if not due:
                    break
                try:
                    chunk = [await self._sweep(store, due, now)]
                except TRANSIENT:
                    raise
                except Exception:
                    # One customer's session that cannot be closed (a bug) must not keep the
                    # whole chunk open: each alone, the failing ones left for the next sweep.
                    log.exception("sweep_chunk_failed", customers=len(due))
                    chunk = await self._one_by_one(store, due, now)
                    due = []  # what failed is due again at once: leave it to the next sweep
                for result in chunk:
                    results.append(result)
                    log_decisions(result.decisions)
                    for decision in result.decisions:
                        if decision.outcome.reason is not None:
                            reason = decision.outcome.reason.value
                            metrics.sweeper_closed.labels(reason=reason).inc()
                    if result.emitted:
                        self._on_committed()
                if len(due) < SWEEP_CHUNK:
                    break
        return results

    def _failed(self, error: BaseException) -> None:
        count_retry("sweep", error)
        self._health.backing_off("sweep", error)

    async def _one_by_one(
        self, store: Store, customers: Sequence[UUID], now: datetime
    ) -> list[BatchResult]:
        results = []
        for customer in customers:
            try:
                results.append(await self._sweep(store, [customer], now))
            except TRANSIENT:
                raise
            except Exception:
                log.exception("sweep_customer_failed", customer_id=customer)
        return results

    async def prune_once(self) -> int:
        retention = self._settings.dedupe_retention_seconds
        pruned = 0
        async with self._open_store() as store:
            while True:
                count = await store.prune_processed(
                    older_than=_seconds(retention), limit=PRUNE_CHUNK
                )
                pruned += count
                if count < PRUNE_CHUNK:
                    break
        if pruned:
            log.info("pruned_dedupe_records", count=pruned)
        return pruned

    async def count_parked(self) -> None:
        """Refresh the parked gauges: a release by an operator's command changes them too."""
        async with self._open_store() as store:
            record_parked(await store.parked_totals())


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)
