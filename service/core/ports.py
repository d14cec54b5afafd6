"""The port the handlers decide through: what they need of the database, and nothing else.

Two implementations keep this contract, checked by one suite (tests/contract/test_store.py):
PostgreSQL (`service.adapters.postgres.store`) for the service, and memory
(`service.adapters.memory_store`) for fast handler tests. Plain declarations: no I/O here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol
from uuid import UUID

import schemas
from service.core.batch import BatchResult, Snapshot
from service.core.parking import EventKey, ParkedEvent
from service.core.sessions import Policy, Session


class OutboxRow(NamedTuple):
    """One encoded output event, as the outbox stores it and the relay publishes it (a named
    tuple, in the outbox's COPY column order: see `Verdict`)."""

    event_id: str
    key: bytes
    value: bytes
    # The W3C trace context of the input event that caused it, sent as a Kafka header.
    traceparent: str | None = None


class ConstraintViolated(Exception):
    """A write broke a rule the store enforces (one active session per customer, one outcome
    per payment, unique ids): a bug in what was decided, never retried into success."""


class Store(Protocol):
    """One connection's worth of the database. Writes count only inside `transaction()`.

    Every method raises the store's own outage errors (for PostgreSQL: asyncpg's connection
    errors, `OSError`) when the database is unreachable; `write_result` raises
    ConstraintViolated."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """All or nothing: an exception inside rolls back every write made in it."""
        ...

    async def ensure_customers(self, customer_ids: Iterable[UUID]) -> None:
        """Give each customer the row that `lock_customers` locks (idempotent). Commits on its
        own: raises RuntimeError inside a transaction."""
        ...

    def locked(
        self, customer_ids: Sequence[UUID], *, ensure: Iterable[UUID] = ()
    ) -> AbstractAsyncContextManager[None]:
        """A `transaction()` that begins by locking the customers, as `lock_customers` does;
        `ensure`: customers first given their rows, as `ensure_customers` does, in a commit of
        their own that stays whatever the transaction does. What a deciding transaction starts
        with, in one step (for PostgreSQL, one round trip where the three took three)."""
        ...

    async def customers_of_sessions(self, session_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """Session id -> customer id, for the sessions that exist."""
        ...

    async def lock_customers(self, customer_ids: Sequence[UUID]) -> None:
        """Lock the customers, in ascending id order, until the transaction ends."""
        ...

    async def claim_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record (source, id) pairs as processed; returns the ones not processed before."""
        ...

    async def claim_and_load(
        self,
        keys: Sequence[tuple[str, str]],
        customer_ids: Sequence[UUID],
        session_ids: Sequence[UUID],
        payment_ids: Sequence[str],
    ) -> tuple[set[tuple[str, str]], Snapshot]:
        """`claim_events(keys)` and the snapshot read in one step (for PostgreSQL, one round
        trip): the keys claimed fresh, and the customers' active sessions, the named sessions,
        which payments have an outcome already, and which of the customers have parked events."""
        ...

    async def unclaim_events(self, keys: Sequence[tuple[str, str]]) -> None:
        """Take back claims this transaction made (events claimed, then set aside)."""
        ...

    async def write_result(self, result: BatchResult, outbox: Sequence[OutboxRow]) -> None:
        """Sessions (updates before inserts), payment outcomes and outbox rows."""
        ...

    async def announce_outbox(self) -> None:
        """Tell every relay that outbox rows committed (after the commit)."""
        ...

    async def active_sessions(self, customer_ids: Sequence[UUID]) -> list[Session]:
        """The customers' waiting and live sessions."""
        ...

    async def due_customers(self, *, now: datetime, max_live: timedelta, limit: int) -> list[UUID]:
        """Customers with a waiting session expired by `now` or a live one older than
        `max_live`, at most `limit` of them; never a parked customer (one with parked events)."""
        ...

    async def prune_processed(self, *, older_than: timedelta, limit: int) -> int:
        """Forget processed-event records older than `older_than`, oldest first, at most
        `limit`; returns how many went."""
        ...

    async def parked_customers(self, customer_ids: Sequence[UUID]) -> set[UUID]:
        """Those of the customers who have parked events."""
        ...

    async def park(self, events: Sequence[ParkedEvent]) -> int:
        """Append events to the parked ones, in the given order (their `seq` and `parked_at`
        are assigned here); an event parked already, by (source, id), is not added again.
        Returns how many were added."""
        ...

    async def parked_events(
        self, customer_ids: Sequence[UUID] | None = None, *, limit: int = 10_000
    ) -> list[ParkedEvent]:
        """Parked events in arrival order: the given customers', or all (those without a
        customer included) when `customer_ids` is None; at most `limit`."""
        ...

    async def unpark(self, seqs: Sequence[int]) -> None:
        """Remove these parked events (by `seq`), released to be decided."""
        ...

    async def parked_totals(self) -> tuple[int, int]:
        """(parked customers, parked events), for the metrics."""
        ...


class DecideBatch(Protocol):
    """Decides a batch of decoded events and commits the decisions: the one signature the
    poison search, `parked release` and the wiring share (the wiring binds the handler, its
    store and its policy; the consumer calls it through a `ContainBatch`).

    `traces`: the traceparent of each event id that came with one. `poison`: events (by key) to
    park with their customer instead of deciding. `trial`: decide and write, then roll back.
    Raises what the store raises."""

    def __call__(
        self,
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> Awaitable[BatchResult]: ...


class ContainBatch(Protocol):
    """Starts one batch's decision under the poison policy (`service.handlers.poison`, bound to
    a `DecideBatch` by the wiring): the consumer makes the attempt returned, and makes it again
    after each failure (backing off in between), until it commits; an outage is raised each time,
    any other failure until its retries are spent, then the batch commits with the events that
    fail parked behind their customers."""

    def __call__(
        self, events: Sequence[schemas.InputEvent], traces: Mapping[str, str]
    ) -> Callable[[], Awaitable[BatchResult]]: ...


class HandleBatch(Protocol):
    """The handler a `DecideBatch` calls on one store (`service.handlers.consume.handle_batch`,
    or a test's stand-in). `failpoint`: the customers whose events fail on purpose
    (FULFILLMENT_FAILPOINT_CUSTOMERS), a named setting rather than a keyword passed through."""

    def __call__(
        self,
        store: Store,
        events: Sequence[schemas.InputEvent],
        *,
        policy: Policy,
        traces: Mapping[str, str],
        poison: Mapping[EventKey, str] | None,
        trial: bool,
        failpoint: frozenset[UUID],
    ) -> Awaitable[BatchResult]: ...
