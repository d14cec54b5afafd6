"""Connections to PostgreSQL. The pool is built by the wiring (`service.bootstrap.factory`).

Raises, wherever a connection is used: asyncpg's `PostgresError` subclasses for refused
statements, `OSError` and `asyncpg.exceptions.ConnectionDoesNotExistError`/`InterfaceError`
when the server is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    Connection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    )
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:  # asyncpg's classes are generic only to the type checker
    Connection = asyncpg.Connection
    Pool = asyncpg.Pool


async def create_pool(dsn: str, *, size: int = 4, **options: Any) -> Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, **options)
    assert pool is not None
    return pool
