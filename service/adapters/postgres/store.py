"""The `Store` port on PostgreSQL: one connection, the statements of `sql`, set-based writes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from service.adapters.postgres import sql
from service.adapters.postgres.pool import Connection, Pool, connection
from service.core.batch import BatchResult, Snapshot
from service.core.outcomes import Reason
from service.core.parking import ParkedEvent
from service.core.ports import ConstraintViolated, OutboxRow
from service.core.sessions import Session, Status


class LocalRelay(Protocol):
    """The outbox relay of this process (service/adapters/kafka/relay.py), told of a commit
    directly rather than through PostgreSQL."""

    @property
    def leads(self) -> bool: ...

    def committed(self, at: float) -> None:
        """Outbox rows committed at `at` (Unix seconds): look now."""


class PostgresStore:
    """Raises asyncpg's errors for outages (see `pool`); ConstraintViolated from writes.

    With `relay`, a commit that wrote outbox rows wakes this process's relay at once; the
    notification to the other instances' relays is left out while this one leads, and goes
    with the COMMIT of `locked` otherwise. Without `relay`, `announce_outbox` notifies."""

    def __init__(self, conn: Connection, relay: LocalRelay | None = None) -> None:
        self.conn = conn
        self._relay = relay
        self._outbox_written = False  # by the transaction `locked` holds open
        self._notified = False  # its commit carried the notification (sql.COMMIT_AND_NOTIFY)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        self._notified = False  # a commit of this one is announced by `announce_outbox`
        return self.conn.transaction()  # asyncpg's own: it rolls back on an exception

    async def ensure_customers(self, customer_ids: Iterable[UUID]) -> None:
        # Its commit does not wait for the WAL flush (sql.ENSURE_CUSTOMERS), which inside a
        # deciding transaction would be the decision's commit.
        if self.conn.is_in_transaction():
            raise RuntimeError("ensure_customers commits on its own: not inside a transaction")
        await self.conn.execute(sql.ENSURE_CUSTOMERS, list(customer_ids))

    @asynccontextmanager
    async def locked(
        self, customer_ids: Sequence[UUID], *, ensure: Iterable[UUID] = ()
    ) -> AsyncIterator[None]:
        # BEGIN and COMMIT by hand, as asyncpg's transaction() sends them, but the BEGIN in the
        # same round trip as the ensure and the lock (sql.begin_locked) for a small batch.
        if self.conn.is_in_transaction():
            raise RuntimeError("locked() begins a transaction: not inside one")
        self._outbox_written = self._notified = False
        ensured = list(ensure)
        try:
            if len(customer_ids) + len(ensured) <= sql.LITERAL_IDS_MAX:
                await self.conn.execute(sql.begin_locked(customer_ids, ensured))
            else:
                if ensured:
                    await self.conn.execute(sql.ENSURE_CUSTOMERS, ensured)
                await self.conn.execute(sql.BEGIN)
                await self.conn.execute(sql.LOCK_CUSTOMERS, customer_ids)
            yield
        except BaseException:
            # Whatever the state: a cancelled `begin_locked` may have begun the transaction
            # without the client knowing yet (asyncpg waits out the cancellation first; a
            # ROLLBACK outside a transaction only draws a warning).
            if not self.conn.is_closed():
                await self.conn.execute(sql.ROLLBACK)
            raise
        # Outbox rows in the service (a relay of its own) whose relay does not lead: the
        # notification for the leading relay goes with the COMMIT, not a round trip later.
        # Without a relay (the commands, a rebuild), `announce_outbox` alone says what is sent.
        notify = self._outbox_written and self._relay is not None and not self._relay.leads
        await self.conn.execute(sql.COMMIT_AND_NOTIFY if notify else sql.COMMIT)
        self._notified = notify

    async def customers_of_sessions(self, session_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        if not session_ids:
            return {}
        rows = await self.conn.fetch(sql.CUSTOMERS_OF_SESSIONS, session_ids)
        return {r["id"]: r["customer_id"] for r in rows}

    async def lock_customers(self, customer_ids: Sequence[UUID]) -> None:
        await self.conn.execute(sql.LOCK_CUSTOMERS, customer_ids)

    async def claim_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(sql.CLAIM_EVENTS, [k[0] for k in keys], [k[1] for k in keys])
        return {(r["source"], r["event_id"]) for r in rows}

    async def claim_and_load(
        self,
        keys: Sequence[tuple[str, str]],
        customer_ids: Sequence[UUID],
        session_ids: Sequence[UUID],
        payment_ids: Sequence[str],
    ) -> tuple[set[tuple[str, str]], Snapshot]:
        rows = await self.conn.fetch(
            sql.LOAD_AND_CLAIM,
            customer_ids,
            session_ids,
            payment_ids,
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        claimed = {(r[2], r[3]) for r in rows if r[13] == "e"}
        return claimed, _snapshot_of(r for r in rows if r[13] != "e")

    async def unclaim_events(self, keys: Sequence[tuple[str, str]]) -> None:
        await self.conn.execute(sql.UNCLAIM_EVENTS, [k[0] for k in keys], [k[1] for k in keys])

    async def write_result(self, result: BatchResult, outbox: Sequence[OutboxRow]) -> None:
        try:
            if result.updated:
                await self.conn.execute(sql.UPDATE_SESSIONS, *_columns(result.updated))
            self._outbox_written = self._outbox_written or bool(outbox)
            rows = len(result.inserted) + len(result.payments) + len(outbox)
            if not rows:
                return
            if rows <= sql.WRITE_ROWS_MAX:
                await self.conn.execute(
                    sql.INSERT_ROWS,
                    *_columns(result.inserted),
                    *_by_column(result.payments, len(sql.PAYMENT_COPY_COLUMNS)),
                    *_by_column(outbox, len(sql.OUTBOX_COPY_COLUMNS)),
                )
                return
            if result.inserted:
                await self.conn.copy_records_to_table(
                    sql.SESSIONS_TABLE,
                    records=[_session_row(x) for x in result.inserted],
                    columns=sql.SESSION_COPY_COLUMNS,
                )
            if result.payments:
                await self.conn.copy_records_to_table(
                    sql.PAYMENTS_TABLE,
                    records=result.payments,  # named tuples in the COPY column order
                    columns=sql.PAYMENT_COPY_COLUMNS,
                )
            if outbox:
                await self.conn.copy_records_to_table(
                    sql.OUTBOX_TABLE,
                    records=outbox,  # named tuples in the COPY column order
                    columns=sql.OUTBOX_COPY_COLUMNS,
                )
        except asyncpg.IntegrityConstraintViolationError as error:
            raise ConstraintViolated(f"{error.__class__.__name__}: {error}") from error

    async def announce_outbox(self) -> None:
        at = time.time()
        if self._relay is not None:
            self._relay.committed(at)
            if self._relay.leads:
                return
        if self._notified:  # with the commit
            self._notified = False
            return
        await self.conn.execute(sql.NOTIFY_OUTBOX.format(at=at))

    async def active_sessions(self, customer_ids: Sequence[UUID]) -> list[Session]:
        return [session_of(r) for r in await self.conn.fetch(sql.ACTIVE_SESSIONS, customer_ids)]

    async def due_customers(self, *, now: datetime, max_live: timedelta, limit: int) -> list[UUID]:
        rows = await self.conn.fetch(sql.DUE_CUSTOMERS, now, now - max_live, limit)
        return [r["customer_id"] for r in rows]

    async def prune_processed(self, *, older_than: timedelta, limit: int) -> int:
        status = await self.conn.execute(sql.PRUNE_PROCESSED, older_than, limit)
        return int(status.split()[-1])

    async def parked_customers(self, customer_ids: Sequence[UUID]) -> set[UUID]:
        rows = await self.conn.fetch(sql.PARKED_CUSTOMERS, customer_ids)
        return {r["customer_id"] for r in rows}

    async def park(self, events: Sequence[ParkedEvent]) -> int:
        if not events:
            return 0
        status = await self.conn.execute(
            sql.PARK_EVENTS,
            [e.customer_id for e in events],
            [e.source for e in events],
            [e.event_id for e in events],
            [e.type for e in events],
            [e.body for e in events],
            [e.reason for e in events],
        )
        return int(status.split()[-1])

    async def parked_events(
        self, customer_ids: Sequence[UUID] | None = None, *, limit: int = 10_000
    ) -> list[ParkedEvent]:
        if customer_ids is None:
            rows = await self.conn.fetch(sql.PARKED_EVENTS_ALL, limit)
        else:
            rows = await self.conn.fetch(sql.PARKED_EVENTS_OF, customer_ids, limit)
        return [ParkedEvent(**dict(r)) for r in rows]

    async def unpark(self, seqs: Sequence[int]) -> None:
        await self.conn.execute(sql.UNPARK, seqs)

    async def parked_totals(self) -> tuple[int, int]:
        row = await self.conn.fetchrow(sql.PARKED_TOTALS)
        assert row is not None
        return row["customers"], row["events"]


@asynccontextmanager
async def store_of(pool: Pool, relay: LocalRelay | None = None) -> AsyncIterator[PostgresStore]:
    """A store on one pooled connection, for one unit of work."""
    async with connection(pool) as conn:
        yield PostgresStore(conn, relay)


def _snapshot_of(rows: Iterable[asyncpg.Record]) -> Snapshot:
    sessions: dict[UUID, Session] = {}
    decided: list[str] = []
    parked: list[UUID] = []
    for row in rows:
        tag = row[13]
        if tag == "s":
            sessions[row[0]] = session_of(row)
        elif tag == "p":
            decided.append(row[2])
        else:
            parked.append(row[1])
    return Snapshot(
        sessions=sessions,
        decided_payments=frozenset(decided),
        parked_customers=frozenset(parked),
    )


def session_of(row: asyncpg.Record) -> Session:
    # By position, in the order of sql's session columns (Session's own field order), which
    # may be followed by others: a row per session a batch touches, no dict, no Enum() call.
    accepted_event_id, close_reason = row[10], row[12]
    return Session(
        row[0],
        row[1],
        row[2],
        row[3],
        _STATUSES[row[4]],
        row[5],
        row[6],
        str(row[7]),
        row[8],
        row[9],
        None if accepted_event_id is None else str(accepted_event_id),
        row[11],
        None if close_reason is None else _REASONS[close_reason],
    )


_STATUSES: dict[str, Status] = {s.value: s for s in Status}
_REASONS: dict[str, Reason] = {r.value: r for r in Reason}


def _columns(sessions: Sequence[Session]) -> list[list[Any]]:
    return [
        [s.id for s in sessions],
        [s.customer_id for s in sessions],
        [s.payment_id for s in sessions],
        [s.session_type for s in sessions],
        [s.status.value for s in sessions],
        [s.created_at for s in sessions],
        [s.expires_at for s in sessions],
        [s.created_event_id for s in sessions],
        [s.mechanic_id for s in sessions],
        [s.accepted_at for s in sessions],
        [s.accepted_event_id for s in sessions],
        [s.closed_at for s in sessions],
        [s.close_reason for s in sessions],
    ]


def _by_column(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


def _session_row(s: Session) -> tuple[Any, ...]:
    # In the order of sql.SESSION_COPY_COLUMNS.
    return (
        s.id,
        s.customer_id,
        s.payment_id,
        s.session_type,
        s.status.value,
        s.created_at,
        s.expires_at,
        s.created_event_id,
        s.mechanic_id,
        s.accepted_at,
        s.accepted_event_id,
        s.closed_at,
        None if s.close_reason is None else s.close_reason.value,
    )
