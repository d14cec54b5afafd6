"""Versioned, forward-only migrations: `migrations/NNNN_name.sql`, shipped inside the package."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from service.adapters.postgres import sql
from service.adapters.postgres.pool import Connection, Pool

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("service.adapters.postgres.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def applied(conn: Connection) -> list[int]:
    if not await conn.fetchval(sql.MIGRATIONS_TABLE_EXISTS):
        return []
    return [r["version"] for r in await conn.fetch(sql.APPLIED_MIGRATIONS)]


async def pending(conn: Connection) -> list[Migration]:
    done = set(await applied(conn))
    return [m for m in available() if m.version not in done]


async def migrate(conn: Connection) -> list[Migration]:
    """Apply what is pending, each migration in its own transaction; returns what was applied.

    Concurrent `migrate` runs queue on an advisory lock, so each migration runs once.
    """
    ran = []
    # The lock comes first: two concurrent CREATE TABLE IF NOT EXISTS can still collide.
    await conn.execute(sql.ADVISORY_LOCK, sql.MIGRATION_LOCK_KEY)
    try:
        await conn.execute(sql.CREATE_MIGRATIONS_TABLE)
        for migration in available():
            async with conn.transaction():
                if migration.version in set(await applied(conn)):
                    continue
                await conn.execute(migration.sql)
                await conn.execute(sql.RECORD_MIGRATION, migration.version, migration.name)
                ran.append(migration)
    finally:
        await conn.execute(sql.UNLOCK, sql.MIGRATION_LOCK_KEY)
    return ran


class DatabaseBehind(Exception):
    """The database lacks migrations this code needs: run `fulfillment migrate`."""


async def check_migrations(pool: Pool) -> None:
    """Raises DatabaseBehind when a migration this code needs has not been applied."""
    async with pool.acquire() as conn:
        missing = await pending(conn)
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise DatabaseBehind(
            f"database is behind, pending migrations: {names}; run `fulfillment migrate`"
        )
