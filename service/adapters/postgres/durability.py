"""What a commit means when the database fails over: with FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY
the service commits with `synchronous_commit = on` and starts only on a primary that names a
synchronous standby, so a commit returns (and then an offset is committed, a row published) only
once a standby has flushed it: the standby a failover promotes knows every published decision.
"""

from __future__ import annotations

from service.adapters.postgres.pool import Pool

SYNCHRONOUS = (
    "SELECT current_setting('synchronous_standby_names') AS names, "
    "current_setting('synchronous_commit') AS level"
)
# Levels at which a commit waits for the standby to flush it (remote_write waits only for its
# operating system to receive it; local and off not at all).
STANDBY_FLUSHED = ("on", "remote_apply")


class NoSynchronousStandby(Exception):
    """A synchronous standby is required and the database has none configured."""


async def check_synchronous_standby(pool: Pool, address: str) -> None:
    """Raises NoSynchronousStandby when commits on `pool` would not wait for a standby."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(SYNCHRONOUS)
    assert row is not None
    if not row["names"].strip():
        raise NoSynchronousStandby(
            f"FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY is on, but PostgreSQL at {address} names "
            "no synchronous standby (synchronous_standby_names is empty): a failover could lose "
            "decisions already published; name the standby there (Patroni: synchronous_mode)"
        )
    if row["level"] not in STANDBY_FLUSHED:
        raise NoSynchronousStandby(
            f"FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY is on, but PostgreSQL at {address} "
            f"commits with synchronous_commit={row['level']}, which does not wait for the "
            "standby's flush"
        )
