"""The `Store` port in memory, for handler tests and anything else that needs no server.

Held to the same contract suite as PostgreSQL (tests/contract/test_store.py): dedupe by
(source, id), snapshots, the tables' rules (one active session per customer, one outcome per
payment, the status checks), rollback of a failed transaction, and locks that make a second
transaction on a customer wait.

Isolation is simpler than PostgreSQL's and stronger: transactions run one at a time (a
database-wide lock, held from begin to end), which is what makes rolling back by restoring a
copy sound. Writes outside a transaction wait for the running one, so a rollback cannot undo
them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from service.core.batch import BatchResult, PaymentRecord, Snapshot
from service.core.outcomes import Kind
from service.core.parking import ParkedEvent
from service.core.ports import ConstraintViolated, OutboxRow
from service.core.sessions import Session, Status


@dataclass
class _Tables:
    customers: set[UUID] = field(default_factory=set)
    sessions: dict[UUID, Session] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    processed: dict[tuple[str, str], datetime] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    parked: list[ParkedEvent] = field(default_factory=list)
    parked_seq: int = 0


class MemoryDatabase:
    """The shared state; each `store()` is one connection's view of it."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.tables = _Tables()
        self.clock = clock
        self.writer = asyncio.Lock()
        self.announcements = 0

    def store(self) -> MemoryStore:
        return MemoryStore(self)


class MemoryStore:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self._in_transaction = False

    @property
    def tables(self) -> _Tables:
        return self._db.tables

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        assert not self._in_transaction, "no nested transactions"
        async with self._db.writer:
            tables = self._db.tables
            before = dataclasses.replace(
                tables,
                customers=set(tables.customers),
                sessions=dict(tables.sessions),
                payments=dict(tables.payments),
                processed=dict(tables.processed),
                outbox=list(tables.outbox),
                parked=list(tables.parked),
            )
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._db.tables = before
                raise
            finally:
                self._in_transaction = False

    @asynccontextmanager
    async def locked(
        self, customer_ids: Sequence[UUID], *, ensure: Iterable[UUID] = ()
    ) -> AsyncIterator[None]:
        await self.ensure_customers(ensure)
        async with self._transaction():
            await self.lock_customers(customer_ids)
            yield

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[None]:
        """A write outside a transaction waits for the running one (inside: it is part of it)."""
        if self._in_transaction:
            yield
            return
        async with self._db.writer:
            yield

    async def ensure_customers(self, customer_ids: Iterable[UUID]) -> None:
        if self._in_transaction:
            raise RuntimeError("ensure_customers commits on its own: not inside a transaction")
        async with self._autocommit():
            self.tables.customers.update(customer_ids)

    async def customers_of_sessions(self, session_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        sessions = self.tables.sessions
        return {i: sessions[i].customer_id for i in session_ids if i in sessions}

    async def lock_customers(self, customer_ids: Sequence[UUID]) -> None:
        # The transaction holds the whole database already: every customer is locked.
        assert self._in_transaction, "locks last until the transaction ends: take them in one"

    async def claim_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        async with self._autocommit():
            processed = self.tables.processed
            now = self._db.clock()
            fresh = set()
            for key in keys:
                if key not in processed:
                    processed[key] = now
                    fresh.add(key)
            return fresh

    async def claim_and_load(
        self,
        keys: Sequence[tuple[str, str]],
        customer_ids: Sequence[UUID],
        session_ids: Sequence[UUID],
        payment_ids: Sequence[str],
    ) -> tuple[set[tuple[str, str]], Snapshot]:
        snapshot = await self._snapshot(customer_ids, session_ids, payment_ids)
        return await self.claim_events(keys), snapshot

    async def unclaim_events(self, keys: Sequence[tuple[str, str]]) -> None:
        async with self._autocommit():
            for key in keys:
                self.tables.processed.pop(key, None)

    async def _snapshot(
        self,
        customer_ids: Sequence[UUID],
        session_ids: Sequence[UUID],
        payment_ids: Sequence[str],
    ) -> Snapshot:
        sessions = self.tables.sessions
        customers = set(customer_ids)
        loaded = {s.id: s for s in sessions.values() if s.active and s.customer_id in customers}
        loaded.update({i: sessions[i] for i in session_ids if i in sessions})
        decided = frozenset(p for p in payment_ids if p in self.tables.payments)
        return Snapshot(
            sessions=loaded,
            decided_payments=decided,
            parked_customers=frozenset(await self.parked_customers(customer_ids)),
        )

    async def write_result(self, result: BatchResult, outbox: Sequence[OutboxRow]) -> None:
        tables = self.tables
        for session in (*result.updated, *result.inserted):
            _check_row(session)
        for session in result.updated:
            if session.id in tables.sessions:
                tables.sessions[session.id] = session
        self._check_one_active()
        for session in result.inserted:
            if session.id in tables.sessions:
                raise ConstraintViolated(f"sessions_pkey: session {session.id} exists")
            tables.sessions[session.id] = session
        self._check_one_active()
        for record in result.payments:
            if record.outcome not in (Kind.CREATED, Kind.REJECTED):
                raise ConstraintViolated(f"payments_outcome_check: {record.outcome}")
            if record.payment_id in tables.payments:
                raise ConstraintViolated(f"payments_pkey: payment {record.payment_id!r} exists")
            tables.payments[record.payment_id] = record
        tables.outbox.extend(outbox)

    def _check_one_active(self) -> None:
        active = [s.customer_id for s in self.tables.sessions.values() if s.active]
        if len(active) != len(set(active)):
            raise ConstraintViolated("sessions_one_active_per_customer")

    async def announce_outbox(self) -> None:
        self._db.announcements += 1

    async def active_sessions(self, customer_ids: Sequence[UUID]) -> list[Session]:
        customers = set(customer_ids)
        return [s for s in self.tables.sessions.values() if s.active and s.customer_id in customers]

    async def due_customers(self, *, now: datetime, max_live: timedelta, limit: int) -> list[UUID]:
        parked = {p.customer_id for p in self.tables.parked}
        due = {
            s.customer_id
            for s in self.tables.sessions.values()
            if s.customer_id not in parked
            and (
                (s.status is Status.WAITING and s.expires_at <= now)
                or (
                    (s.status is Status.LIVE and s.accepted_at is not None)
                    and s.accepted_at <= now - max_live
                )
            )
        }
        return sorted(due)[:limit]

    async def prune_processed(self, *, older_than: timedelta, limit: int) -> int:
        async with self._autocommit():
            cutoff = self._db.clock() - older_than
            old = sorted((at, key) for key, at in self.tables.processed.items() if at < cutoff)
            for _, key in old[:limit]:
                del self.tables.processed[key]
            return min(len(old), limit)

    async def parked_customers(self, customer_ids: Sequence[UUID]) -> set[UUID]:
        wanted = set(customer_ids)
        return {p.customer_id for p in self.tables.parked if p.customer_id in wanted}

    async def park(self, events: Sequence[ParkedEvent]) -> int:
        tables = self.tables
        known = {p.key for p in tables.parked}
        added = 0
        for event in events:
            if event.key in known:
                continue
            known.add(event.key)
            tables.parked_seq += 1
            tables.parked.append(
                dataclasses.replace(event, seq=tables.parked_seq, parked_at=self._db.clock())
            )
            added += 1
        return added

    async def parked_events(
        self, customer_ids: Sequence[UUID] | None = None, *, limit: int = 10_000
    ) -> list[ParkedEvent]:
        parked = self.tables.parked
        if customer_ids is not None:
            wanted = set(customer_ids)
            parked = [p for p in parked if p.customer_id in wanted]
        return parked[:limit]

    async def unpark(self, seqs: Sequence[int]) -> None:
        gone = set(seqs)
        self.tables.parked = [p for p in self.tables.parked if p.seq not in gone]

    async def parked_totals(self) -> tuple[int, int]:
        parked = self.tables.parked
        return len({p.customer_id for p in parked if p.customer_id is not None}), len(parked)


def _check_row(session: Session) -> None:
    """The CHECK constraints of the sessions table (migration 0001)."""
    if session.status is Status.LIVE and (
        session.mechanic_id is None or session.accepted_at is None
    ):
        raise ConstraintViolated(f"sessions_check: live session {session.id} without a mechanic")
    if (session.status in (Status.COMPLETED, Status.CANCELLED)) != (session.closed_at is not None):
        raise ConstraintViolated(f"sessions_check: {session.status} session {session.id} closed_at")
