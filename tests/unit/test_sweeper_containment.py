"""The sweeper on the in-memory store: a customer whose due session cannot be closed (a bug)
does not keep the other customers of its chunk open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from service.adapters.memory_store import MemoryDatabase
from service.adapters.sweeper import Sweeper
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.ports import Store
from service.handlers.consume import handle_batch
from service.handlers.sweep import sweep_customers
from tests.unit.core.builders import ALICE, BOB, CAROL, POLICY, T0, minutes, payment

pytestmark = pytest.mark.timeout(30)


async def test_a_customer_whose_sweep_fails_leaves_the_rest_of_its_chunk_swept() -> None:
    db = MemoryDatabase()

    @asynccontextmanager
    async def open_store() -> AsyncIterator[Store]:
        yield db.store()

    async def sweep(store: Store, customers: Sequence[UUID], now: datetime) -> BatchResult:
        if BOB in customers:
            raise ZeroDivisionError("a bug closing bob's session")
        return await sweep_customers(store, customers, now=now, policy=POLICY)

    store = db.store()
    await handle_batch(
        store, [payment("a", ALICE), payment("b", BOB), payment("c", CAROL)], policy=POLICY
    )
    sweeper = Sweeper(Settings(), open_store, sweep, clock=lambda: T0 + minutes(16))
    with capture_logs() as logs:
        results = await sweeper.sweep_once()
    closed = {d.customer_id for r in results for d in r.decisions}
    assert closed == {ALICE, CAROL}
    assert [s.customer_id for s in await store.active_sessions([ALICE, BOB, CAROL])] == [BOB]
    assert [e["customer_id"] for e in logs if e["event"] == "sweep_customer_failed"] == [BOB]
