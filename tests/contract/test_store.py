"""One contract, two stores: what the handlers rely on holds in memory exactly as in PostgreSQL.

Every test runs against both (`store` is parametrised). What only PostgreSQL can show (its unique
index under concurrent instances, the plans of its statements) stays in tests/integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from service.adapters import postgres
from service.adapters.memory_store import MemoryDatabase
from service.core.batch import BatchResult, Snapshot
from service.core.parking import ParkedEvent
from service.core.ports import ConstraintViolated, OutboxRow, Store
from service.handlers.outbox import outbox_row
from tests.conftest import create_database, drop_database
from tests.unit.core.builders import (
    ALICE,
    BOB,
    MAX_LIVE,
    T0,
    acceptance,
    decide,
    minutes,
    payment,
    session_of,
    snapshot,
    waiting,
)

OpenStore = Callable[[], AbstractAsyncContextManager[Store]]


@pytest.fixture(params=["memory", "postgres"])
async def open_store(request: pytest.FixtureRequest) -> AsyncIterator[OpenStore]:
    """Opens a store (one connection's worth) on one database shared by the test."""
    if request.param == "memory":
        db = MemoryDatabase()

        @asynccontextmanager
        async def memory() -> AsyncIterator[Store]:
            yield db.store()

        yield memory
        return
    servers = request.getfixturevalue("servers")
    dsn = await create_database(servers)
    pool = await postgres.create_pool(dsn, size=4)
    try:
        yield lambda: postgres.store_of(pool)
    finally:
        await pool.close()
        await drop_database(servers, dsn)


def rows(result: BatchResult) -> list[OutboxRow]:
    return [outbox_row(e) for e in result.emitted]


async def read(
    store: Store, customers: Sequence[UUID], sessions: Sequence[UUID], payments: Sequence[str]
) -> Snapshot:
    """The snapshot as a deciding transaction reads it, claiming nothing."""
    _, loaded = await store.claim_and_load([], customers, sessions, payments)
    return loaded


async def write(store: Store, result: BatchResult) -> None:
    customers = {s.customer_id for s in (*result.inserted, *result.updated)}
    await store.ensure_customers(customers)
    async with store.transaction():
        await store.lock_customers(sorted(customers))
        await store.write_result(result, rows(result))


async def test_an_event_is_claimed_once_whatever_the_batch_or_the_connection(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        async with store.transaction():
            first = await store.claim_events([("s", "1"), ("s", "2"), ("s", "1")])
        assert first == {("s", "1"), ("s", "2")}
    async with open_store() as other:
        async with other.transaction():
            again = await other.claim_events([("s", "2"), ("s", "3"), ("t", "2")])
        assert again == {("s", "3"), ("t", "2")}


async def test_a_claim_in_a_rolled_back_transaction_leaves_the_event_unclaimed(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.claim_events([("s", "1")])
                raise RuntimeError("rolled back")
        async with store.transaction():
            assert await store.claim_events([("s", "1")]) == {("s", "1")}


async def test_a_snapshot_holds_the_customers_active_sessions_the_named_ones_and_decided_payments(
    open_store: OpenStore,
) -> None:
    created = decide(payment("pay-1", ALICE), payment("pay-2", BOB))
    async with open_store() as store:
        await write(store, created)
        expired = decide(
            payment("pay-3", BOB, at=T0 + minutes(20)),
            state=snapshot(waiting("pay-2", BOB)),
        )
        await write(store, expired)
        async with store.transaction():
            loaded = await read(store, [ALICE], [session_of("pay-2"), uuid4()], ["pay-1", "pay-9"])
    assert set(loaded.sessions) == {session_of("pay-1"), session_of("pay-2")}
    assert loaded.sessions[session_of("pay-1")] == waiting("pay-1", ALICE)
    assert loaded.sessions[session_of("pay-2")].status == "cancelled"
    assert loaded.decided_payments == frozenset({"pay-1"})


async def test_a_snapshot_names_those_of_its_customers_who_have_parked_events(
    open_store: OpenStore,
) -> None:
    parked = ParkedEvent(BOB, "payments", "evt-9", "payment.completed", b"{}", "poison")
    async with open_store() as store:
        await store.ensure_customers([ALICE, BOB])
        async with store.transaction():
            await store.lock_customers(sorted([ALICE, BOB]))
            await store.park([parked])
        async with store.transaction():
            both = await read(store, sorted([ALICE, BOB]), [], [])
            alice = await read(store, [ALICE], [], [])
    assert both.parked_customers == frozenset({BOB})
    assert alice.parked_customers == frozenset()
    assert both.sessions == {} and both.decided_payments == frozenset()


async def test_sessions_are_found_by_id_and_customers_by_their_sessions(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(store, decide(payment("pay-1", ALICE)))
        owners = await store.customers_of_sessions([session_of("pay-1"), uuid4()])
        assert owners == {session_of("pay-1"): ALICE}
        assert await store.active_sessions([ALICE, BOB]) == [waiting("pay-1", ALICE)]


async def test_a_second_active_session_for_a_customer_is_refused_and_nothing_is_written(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(store, decide(payment("pay-1", ALICE)))
        # Decided as if the first session did not exist: a bug the store must stop.
        second = decide(payment("pay-2", ALICE))
        with pytest.raises(ConstraintViolated):
            await write(store, second)
        assert await store.active_sessions([ALICE]) == [waiting("pay-1", ALICE)]
        async with store.transaction():
            loaded = await read(store, [], [], ["pay-2"])
        assert loaded.decided_payments == frozenset()


async def test_a_second_outcome_for_a_payment_is_refused(open_store: OpenStore) -> None:
    async with open_store() as store:
        # pay-1 makes a session, pay-2 is rejected: a payment row with no session written.
        await write(store, decide(payment("pay-1", ALICE), payment("pay-2", ALICE)))
        again = decide(payment("pay-2", ALICE), state=snapshot(waiting("pay-1")))
        assert not again.inserted and not again.updated and again.payments
        with pytest.raises(ConstraintViolated):
            await write(store, again)


async def test_a_closed_session_and_its_successor_are_written_together(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(store, decide(payment("pay-1", ALICE)))
        replaced = decide(
            payment("pay-2", ALICE, at=T0 + minutes(16)), state=snapshot(waiting("pay-1"))
        )
        assert replaced.updated and replaced.inserted
        await write(store, replaced)
        assert [s.id for s in await store.active_sessions([ALICE])] == [session_of("pay-2")]


async def test_due_customers_are_those_with_an_expired_wait_or_an_overdue_live_session(
    open_store: OpenStore,
) -> None:
    carol, dave = uuid4(), uuid4()
    async with open_store() as store:
        await write(
            store,
            decide(
                payment("pay-a", ALICE),
                payment("pay-b", BOB, at=T0 + minutes(10)),
                payment("pay-c", carol),
                acceptance(session_of("pay-c"), at=T0 + minutes(1)),
                payment("pay-d", dave, at=T0 + minutes(30)),
                acceptance(session_of("pay-d"), at=T0 + minutes(31)),
            ),
        )
        now = T0 + MAX_LIVE + minutes(16)
        due = await store.due_customers(now=now, max_live=MAX_LIVE, limit=100)
    # Alice's wait expired at 15 min, Bob's at 25; Carol is live since 1 min, past 4 h by
    # 15 min; Dave went live at 31 min, so his 4 h are not up.
    assert sorted(due) == sorted([ALICE, BOB, carol])


async def test_processed_records_older_than_the_retention_are_pruned(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        async with store.transaction():
            await store.claim_events([("s", str(i)) for i in range(5)])
        await asyncio.sleep(0.01)
        assert await store.prune_processed(older_than=timedelta(days=1), limit=10) == 0
        assert await store.prune_processed(older_than=timedelta(0), limit=3) == 3
        assert await store.prune_processed(older_than=timedelta(0), limit=3) == 2
        async with store.transaction():
            assert await store.claim_events([("s", "0")]) == {("s", "0")}


async def test_customers_are_ensured_in_a_commit_of_their_own_never_inside_a_transaction(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        with pytest.raises(RuntimeError, match="not inside a transaction"):
            async with store.transaction():
                await store.ensure_customers([ALICE])
        await store.ensure_customers([ALICE, BOB])
        async with store.transaction():
            await store.lock_customers(sorted([ALICE, BOB]))


async def test_a_customer_locked_by_one_transaction_waits_for_it_in_another(
    open_store: OpenStore,
) -> None:
    async with open_store() as holder, open_store() as waiter:
        await holder.ensure_customers([ALICE])
        released = asyncio.Event()

        async def hold() -> None:
            async with holder.transaction():
                await holder.lock_customers([ALICE])
                await released.wait()

        async def wait_for_lock() -> None:
            async with waiter.transaction():
                await waiter.lock_customers([ALICE, BOB])

        holding = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        waiting_task = asyncio.create_task(wait_for_lock())
        await asyncio.sleep(0.3)
        assert not waiting_task.done()
        released.set()
        await asyncio.wait_for(asyncio.gather(holding, waiting_task), timeout=5)


async def _overlapping(
    open_store: OpenStore, first: list[tuple[str, str]], second: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """`first` is claimed in a transaction that rolls back while `second` is being claimed in
    another one that commits; returns what the second claimed as fresh."""
    async with open_store() as a, open_store() as b:
        started, roll_back = asyncio.Event(), asyncio.Event()

        async def claim_then_roll_back() -> None:
            with pytest.raises(RuntimeError):
                async with a.transaction():
                    await a.claim_events(first)
                    started.set()
                    await roll_back.wait()
                    raise RuntimeError("rolled back")

        async def claim_and_commit() -> set[tuple[str, str]]:
            async with b.transaction():
                return await b.claim_events(second)

        rolling = asyncio.create_task(claim_then_roll_back())
        await started.wait()
        committing = asyncio.create_task(claim_and_commit())
        await asyncio.sleep(0.2)
        roll_back.set()
        _, fresh = await asyncio.wait_for(asyncio.gather(rolling, committing), timeout=5)
        return fresh


async def test_a_rollback_undoes_only_its_own_transaction(open_store: OpenStore) -> None:
    fresh = await _overlapping(open_store, [("s", "a")], [("s", "b")])
    assert fresh == {("s", "b")}
    async with open_store() as store:
        async with store.transaction():
            assert await store.claim_events([("s", "a"), ("s", "b")]) == {("s", "a")}


async def test_an_event_claimed_by_a_transaction_that_rolls_back_is_fresh_for_the_next(
    open_store: OpenStore,
) -> None:
    assert await _overlapping(open_store, [("s", "a")], [("s", "a")]) == {("s", "a")}


async def test_a_transaction_begun_locked_holds_the_customers_it_ensured_until_it_ends(
    open_store: OpenStore,
) -> None:
    carol = uuid4()
    async with open_store() as holder, open_store() as waiter:
        released = asyncio.Event()

        async def hold(fail: bool) -> None:
            async with holder.locked([carol], ensure=[carol]):
                await holder.claim_events([("s", "held")])
                await released.wait()
                if fail:
                    raise RuntimeError("rolled back")

        async def wait_for_lock() -> None:
            async with waiter.locked(sorted([ALICE, carol], key=lambda c: c.int)):
                pass

        for fail in (True, False):  # the ensured row outlives a rollback: it still locks
            released.clear()
            holding = asyncio.create_task(hold(fail))
            await asyncio.sleep(0.1)
            waiting_task = asyncio.create_task(wait_for_lock())
            await asyncio.sleep(0.3)
            assert not waiting_task.done()
            released.set()
            held, waited = await asyncio.wait_for(
                asyncio.gather(holding, waiting_task, return_exceptions=True), timeout=5
            )
            assert isinstance(held, RuntimeError) if fail else held is None
            assert waited is None
        async with holder.transaction():
            # The rolled-back claim went with its transaction, the committed one stayed.
            assert await holder.claim_events([("s", "held")]) == set()


async def test_a_transaction_begins_locked_only_outside_another(open_store: OpenStore) -> None:
    async with open_store() as store:
        with pytest.raises(RuntimeError):
            async with store.transaction():
                async with store.locked([ALICE]):
                    pass


async def test_claims_read_with_a_snapshot_are_the_fresh_ones_and_a_claim_taken_back_is_undone(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await write(store, decide(payment("pay-1", ALICE)))
        async with store.transaction():
            await store.claim_events([("s", "old")])
        async with store.locked([ALICE]):
            fresh, loaded = await store.claim_and_load(
                [("s", "old"), ("s", "new"), ("s", "aside")], [ALICE], [], ["pay-1"]
            )
            await store.unclaim_events([("s", "aside")])
        assert fresh == {("s", "new"), ("s", "aside")}
        assert loaded.sessions == {session_of("pay-1"): waiting("pay-1", ALICE)}
        assert loaded.decided_payments == frozenset({"pay-1"})
        async with store.transaction():
            again = await store.claim_events([("s", "old"), ("s", "new"), ("s", "aside")])
        assert again == {("s", "aside")}
