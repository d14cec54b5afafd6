"""The relay's statements: read the outbox in commit order, delete what was published, and the
advisory lock that makes one relay the leader."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.adapters.postgres import sql
from service.adapters.postgres.pool import Connection


async def prepare_relay_connection(conn: Connection) -> None:
    await conn.execute(sql.RELAY_SESSION)


async def next_outbox(conn: Connection, limit: int, after: int = 0) -> list[asyncpg.Record]:
    """The next `limit` rows in seq order, from after `after`."""
    return await conn.fetch(sql.OUTBOX_NEXT, limit, after)


async def delete_outbox(conn: Connection, seqs: Sequence[int]) -> None:
    await conn.execute(sql.OUTBOX_DELETE, seqs)


async def try_lock(conn: Connection, key: int) -> bool:
    return bool(await conn.fetchval(sql.TRY_LOCK, key))


async def unlock(conn: Connection, key: int) -> None:
    await conn.execute(sql.UNLOCK, key)


async def fence(conn: Connection, key: int) -> tuple[bool, bool]:
    """(whether this session holds the advisory lock `key`, whether its server is read-only)."""
    row = await conn.fetchrow(sql.FENCE, key)
    assert row is not None
    return bool(row[0]), bool(row[1])


async def holds_lock(conn: Connection, key: int) -> bool:
    """Whether this connection's session holds the advisory lock `key` (the relay's fence)."""
    return bool(await conn.fetchval(sql.HOLDS_LOCK, key))
