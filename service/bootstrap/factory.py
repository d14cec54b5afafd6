"""The one place that turns `Settings` into clients: every aiokafka consumer, producer and admin
client, and the asyncpg pool. Connection and security options therefore live here alone."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from service.adapters import postgres
from service.adapters.kafka.sizes import DLQ_MAX_MESSAGE_BYTES, MAX_FETCH_BYTES
from service.bootstrap.reach import Unreachable, reach_kafka
from service.config.kafka_security import uses_sasl, uses_tls
from service.config.settings import ConfigurationError, Settings

# What asyncpg raises when it cannot open a connection: refused, unknown host, TLS, timeout,
# authentication and every other refusal by the server.
POSTGRES_CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Clients:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _kafka(self) -> dict[str, Any]:
        """What every Kafka client needs to reach and trust the cluster."""
        settings = self.settings
        protocol = settings.kafka_security_protocol
        options: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "security_protocol": protocol,
        }
        if uses_tls(protocol):
            options["ssl_context"] = self._ssl_context
        if uses_sasl(protocol):
            password = settings.kafka_sasl_password
            options |= {
                "sasl_mechanism": settings.kafka_sasl_mechanism,
                "sasl_plain_username": settings.kafka_sasl_username,
                "sasl_plain_password": password.get_secret_value() if password else None,
            }
        return options

    @cached_property
    def _ssl_context(self) -> ssl.SSLContext:
        """Verifies the brokers' certificates (and host names, unless turned off); presents the
        client's certificate when one is configured (mutual TLS). Built once, shared."""
        settings = self.settings
        try:
            context: ssl.SSLContext = create_ssl_context(cafile=settings.kafka_ssl_cafile)
        except (ssl.SSLError, OSError) as error:
            raise ConfigurationError(
                f"FULFILLMENT_KAFKA_SSL_CAFILE: not a PEM CA bundle ({_reason(error)})"
            ) from None
        if settings.kafka_ssl_certfile is not None:
            key_password = settings.kafka_ssl_key_password
            try:
                # What create_ssl_context(certfile=, keyfile=, password=) does, apart, so that
                # a bad CA and a bad certificate are told apart.
                context.load_cert_chain(
                    settings.kafka_ssl_certfile,
                    settings.kafka_ssl_keyfile,
                    key_password.get_secret_value() if key_password else None,
                )
            except (ssl.SSLError, OSError) as error:
                raise ConfigurationError(
                    "FULFILLMENT_KAFKA_SSL_CERTFILE, FULFILLMENT_KAFKA_SSL_KEYFILE: cannot load "
                    f"the client certificate and key ({_reason(error)})"
                ) from None
        context.check_hostname = settings.kafka_ssl_check_hostname
        return context

    async def check_kafka(self) -> None:
        """Returns once Kafka accepts a connection; raises Unreachable with the cause."""
        await reach_kafka(self._kafka())

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
            "fetch_max_wait_ms": 100,
            # Several consumers per process join one after another; a short heartbeat lets the
            # group settle in about a second instead of three.
            "heartbeat_interval_ms": 1000,
        }
        return AIOKafkaConsumer(**(self._kafka() | options | overrides))

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
        return AIOKafkaProducer(**(self._kafka() | options | overrides))

    def admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self._kafka())

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


def _reason(error: OSError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)
