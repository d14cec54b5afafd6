"""The database a rebuild or a restore writes into: checked empty first, its outbox discarded
after (what a rebuild re-made is compared, not published)."""

from __future__ import annotations

from service.adapters.postgres import sql
from service.adapters.postgres.migrate import migrate
from service.adapters.postgres.pool import Pool


async def prepare_empty(pool: Pool) -> list[str]:
    """Applies pending migrations; returns the tables that already hold rows (empty: none).
    Raises asyncpg's errors when the database is unreachable."""
    async with pool.acquire() as conn:
        await migrate(conn)
        return [r["name"] for r in await conn.fetch(sql.TABLES_IN_USE)]


async def discard_outbox(pool: Pool) -> None:
    await pool.execute(sql.DISCARD_OUTBOX)
