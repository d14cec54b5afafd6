"""The operator commands' one connection: refused, like `run`, on a database that is behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.adapters import postgres
from service.adapters.postgres.migrate import check_migrations
from service.bootstrap.factory import Clients
from service.config.settings import Settings


@asynccontextmanager
async def operator_store(settings: Settings) -> AsyncIterator[postgres.PostgresStore]:
    """Raises DatabaseBehind when migrations are pending, OSError when unreachable."""
    pool = await Clients(settings).pool(size=1)
    try:
        await check_migrations(pool)
        async with postgres.store_of(pool) as store:
            yield store
    finally:
        await pool.close()
