"""Connections to PostgreSQL. The pool is built by the wiring (`service.bootstrap.factory`).

Raises, wherever a connection is used: asyncpg's `PostgresError` subclasses for refused
statements, `OSError` and `asyncpg.exceptions.ConnectionDoesNotExistError`/`InterfaceError`
when the server is unreachable.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import structlog

from service.adapters.failures import FAILOVER

if TYPE_CHECKING:
    Connection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    )
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
else:  # asyncpg's classes are generic only to the type checker
    Connection = asyncpg.Connection
    Pool = asyncpg.Pool

log = structlog.get_logger("service.postgres")


async def create_pool(dsn: str, *, size: int = 4, **options: Any) -> Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, **options)
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[Connection]:
    """A pooled connection. An error saying the server is no longer a writable primary
    (failures.FAILOVER: read-only, shut down, starting) expires every connection of the pool:
    each is replaced at its next acquire, through the URL's hosts and target_session_attrs,
    instead of going on asking a demoted primary."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except FAILOVER as error:
        log.warning("database_connections_dropped", error=repr(error))
        await pool.expire_connections()
        raise


def keepalive_init(idle: int) -> Callable[[Connection], Awaitable[None]]:
    """A pool `init` that turns on TCP keepalives on the client's end of each connection
    (asyncpg has no option for it): a server that vanished without a FIN is noticed within
    `idle * 2` seconds instead of the kernel's two hours."""

    async def init(conn: Connection) -> None:
        transport = getattr(conn, "_transport", None)
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # a Unix socket: no network to fail silently
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; elsewhere the system's defaults apply
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, idle // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)

    return init
