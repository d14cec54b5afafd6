"""The relay's statements: read the outbox in commit order, delete what was published, and the
advisory lock that makes one relay the leader."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from asyncpg.transaction import Transaction

from service.adapters.postgres import sql
from service.adapters.postgres.pool import Connection


async def prepare_relay_connection(conn: Connection) -> None:
    await conn.execute(sql.RELAY_SESSION)


def snapshot(conn: Connection) -> Transaction:
    """A read-only transaction whose statements all see one snapshot (REPEATABLE READ): the
    pages of one relay round. A customer's later transaction starts only after its earlier one
    committed, so a snapshot that holds a customer's row holds every earlier row of theirs not
    yet deleted; pages read each in its own snapshot could miss an earlier row that committed
    between two reads and return a later one."""
    return conn.transaction(isolation="repeatable_read", readonly=True)


async def next_outbox(conn: Connection, limit: int, after: int = 0) -> list[asyncpg.Record]:
    """The next `limit` rows in seq order, from after `after`."""
    return await conn.fetch(sql.OUTBOX_NEXT, limit, after)


async def first_page_fenced(
    conn: Connection, limit: int, key: int
) -> tuple[list[asyncpg.Record], tuple[bool, bool] | None]:
    """The first `limit` rows in seq order and, read in the same statement, what `fence`
    returns; the fence is None when there are no rows."""
    rows = await conn.fetch(sql.OUTBOX_NEXT_FENCED, limit, key)
    if not rows:
        return rows, None
    return rows, (bool(rows[0]["leads"]), bool(rows[0]["read_only"]))


async def delete_outbox(conn: Connection, seqs: Sequence[int]) -> None:
    await conn.execute(sql.OUTBOX_DELETE, seqs)


async def take_over(conn: Connection, holder: UUID) -> tuple[UUID | None, bool]:
    """Records `holder` as the leader, not let go cleanly; returns (the former leader, whether
    it let go cleanly). Committed with the WAL flushed, whatever the session's setting."""
    async with conn.transaction():
        await conn.execute(sql.DURABLE_COMMIT)
        row = await conn.fetchrow(sql.RELAY_TAKE_OVER, holder)
    assert row is not None  # the migration inserts the one row
    return row[0], bool(row[1])


async def let_go(conn: Connection, holder: UUID) -> None:
    """`holder` leads no more and none of its batches is in flight."""
    await conn.execute(sql.RELAY_LET_GO, holder)


async def try_lock(conn: Connection, key: int) -> bool:
    """Takes the advisory lock `key` if free. Raises ReadOnlySQLTransactionError, as a write
    would, on a server that takes no writes: a relay waiting there for the lock would wait for
    good after a switchover (the lock is held on the old primary, the decisions commit on the
    new one), so its pool drops the connection and finds the primary again."""
    taken = await conn.fetchval(sql.TRY_LOCK, key)
    if taken is None:
        raise asyncpg.exceptions.ReadOnlySQLTransactionError(
            "the database takes no writes (a demoted primary or a standby): not leading here"
        )
    return bool(taken)


async def unlock(conn: Connection, key: int) -> None:
    await conn.execute(sql.UNLOCK, key)


async def leads(conn: Connection, key: int, known: tuple[bool, bool] | None = None) -> bool:
    """Whether this session holds the advisory lock `key`, from `known` (what `fence` or
    `first_page_fenced` read) or read now. Raises ReadOnlySQLTransactionError, as a write would,
    where the server takes no writes: the pool drops its connections to it."""
    holds, read_only = known or await fence(conn, key)
    if read_only:
        raise asyncpg.exceptions.ReadOnlySQLTransactionError(
            "the database takes no writes (a demoted primary or a standby): nothing is sent"
        )
    return holds


async def fence(conn: Connection, key: int) -> tuple[bool, bool]:
    """(whether this session holds the advisory lock `key`, whether its server is read-only)."""
    row = await conn.fetchrow(sql.FENCE, key)
    assert row is not None
    return bool(row[0]), bool(row[1])


async def holds_lock(conn: Connection, key: int) -> bool:
    """Whether this connection's session holds the advisory lock `key` (the relay's fence)."""
    return bool(await conn.fetchval(sql.HOLDS_LOCK, key))
