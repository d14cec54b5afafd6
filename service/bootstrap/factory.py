"""The one place that turns `Settings` into clients: every aiokafka consumer, producer and admin
client, and the asyncpg pool. Each Kafka client gets its connection and security options from
service/config/kafka_security.py; the pool's options live here alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from service.adapters import postgres
from service.adapters.kafka.sizes import DLQ_MAX_MESSAGE_BYTES, MAX_FETCH_BYTES
from service.bootstrap.reach import Unreachable, reach_kafka
from service.config.kafka_security import KafkaAccess
from service.config.settings import Settings

# What asyncpg raises when it cannot open a connection: refused, unknown host, TLS, timeout,
# authentication and every other refusal by the server.
POSTGRES_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Clients:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._kafka = KafkaAccess(settings)

    async def check_kafka(self) -> None:
        """Returns once Kafka accepts a connection; raises Unreachable with the cause."""
        await reach_kafka(self._kafka.options())

    async def check_postgres(self) -> None:
        """Returns once PostgreSQL accepts a connection; raises Unreachable with the cause."""
        pool = await self.pool(size=1, bounded=False)
        await pool.close()

    def consumer(self, **overrides: Any) -> AIOKafkaConsumer:
        """A member of the service's group by default; `group_id=None` for a plain reader."""
        options: dict[str, Any] = {
            "group_id": self.settings.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_partition_fetch_bytes": MAX_FETCH_BYTES,
            # Answered at the first byte; otherwise after the wait (settings.py says why short).
            "fetch_min_bytes": 1,
            "fetch_max_wait_ms": self.settings.kafka_fetch_max_wait_ms,
            # Several consumers per process join one after another; a short heartbeat lets the
            # group settle in about a second instead of three.
            "heartbeat_interval_ms": 1000,
        }
        return AIOKafkaConsumer(**(self._kafka.options() | options | overrides))

    def producer(self, **overrides: Any) -> AIOKafkaProducer:
        options: dict[str, Any] = {
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 2,
            # Room for a whole round of the outbox per partition, under the broker's 1 MiB limit.
            "max_batch_size": 900_000,
            # A dead-lettered record is the largest the consumer can fetch, plus the error
            # headers: it must never be refused for its size (the DLQ topic is created to match).
            "max_request_size": DLQ_MAX_MESSAGE_BYTES,
        }
        return AIOKafkaProducer(**(self._kafka.options() | options | overrides))

    def admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self._kafka.options())

    @asynccontextmanager
    async def started_admin(self) -> AsyncIterator[AIOKafkaAdminClient]:
        admin = self.admin()
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()

    async def pool(self, *, size: int, bounded: bool = True) -> postgres.Pool:
        """Raises Unreachable (with asyncpg's error as the cause) when no connection opens.
        TLS comes from the URL (sslmode, sslrootcert) or FULFILLMENT_DATABASE_SSLROOTCERT.
        `bounded=False` only for migrations, whose statements and lock waits may be long."""
        try:
            if not bounded:
                return await postgres.create_pool(self.settings.dsn, size=size)
            return await self._bounded_pool(size)
        except POSTGRES_CONNECT_ERRORS as error:
            raise Unreachable("PostgreSQL", self.settings.database_address, error) from error

    async def _bounded_pool(self, size: int) -> postgres.Pool:
        s = self.settings
        idle = s.db_keepalive_idle_seconds
        return await postgres.create_pool(
            s.dsn,
            size=size,
            server_settings={
                "statement_timeout": _ms(s.db_statement_timeout_seconds),
                "lock_timeout": _ms(s.db_lock_timeout_seconds),
                "idle_in_transaction_session_timeout": _ms(
                    s.db_idle_in_transaction_timeout_seconds
                ),
                # The server's end: a dead instance's locks go when its connection does.
                "tcp_keepalives_idle": str(idle),
                "tcp_keepalives_interval": str(max(1, idle // 3)),
                "tcp_keepalives_count": "3",
                # Every statement of the service finds its rows through an index. Sequential
                # scans stay possible (where no index serves, the planner still uses one) but
                # are priced out: in a table that grew since its last ANALYZE (a new
                # deployment, a rebuild into an empty database, a burst between autovacuum's
                # rounds) the planner, without statistics, reads all of `sessions` and
                # `payments` for every batch (tests/integration/test_query_plans.py). Measured
                # with bench/hot_path.py --batch 83 on a fresh database: 263 us of wall time
                # per event with such plans, 93 without; no change in batches of 2,000.
                "enable_seqscan": "off",
                # A role or database set to `local` or `off` would not wait for the standby.
                **({"synchronous_commit": "on"} if s.database_synchronous_standby else {}),
            },
            # The client's own bound on each statement, should the server stop answering.
            command_timeout=s.db_statement_timeout_seconds + 5,
            init=postgres.keepalive_init(idle),
        )


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"
