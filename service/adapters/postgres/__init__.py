"""PostgreSQL: the store, the outbox statements, migrations and the connection pool."""

from service.adapters.postgres.pool import Connection, Pool, create_pool, keepalive_init
from service.adapters.postgres.sql import OUTBOX_CHANNEL, RELAY_LOCK_KEY
from service.adapters.postgres.store import LocalRelay, PostgresStore, store_of

__all__ = [
    "OUTBOX_CHANNEL",
    "RELAY_LOCK_KEY",
    "Connection",
    "LocalRelay",
    "Pool",
    "PostgresStore",
    "create_pool",
    "keepalive_init",
    "store_of",
]
