"""The secured endpoints `make up` provides are real: Kafka over TLS with SCRAM-SHA-512 or a client
certificate, PostgreSQL over verified TLS, and each of them refuses what it should refuse.

Raw aiokafka and asyncpg on purpose: these tests pin down the servers, not the service's clients.
The failures are asserted through `aiokafka.conn.create_conn`, which raises the error of the one
connection, where a producer or consumer would only report that it could not bootstrap.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from tests.commands import make_ca
from tests.servers import SecuredServers, Servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

T = TypeVar("T")

# Each network step gets this long; a hang is a failure, not a stuck suite.
STEP_SECONDS = 20
REQUEST_TIMEOUT_MS = 15_000


async def bounded(step: Awaitable[T]) -> T:
    return await asyncio.wait_for(step, STEP_SECONDS)


def with_query(url: str, **params: str) -> str:
    """`url` with the given query parameters set (replacing any of the same name)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | params
    return urlunsplit(parts._replace(query=urlencode(query)))


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.split(",")[0].rpartition(":")
    return host, int(port)


@pytest.fixture
def secured(servers: Servers) -> SecuredServers:
    return servers.secured()


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the local stack serves."""
    return make_ca(tmp_path_factory.mktemp("foreign-ca"))


def sasl_ssl_options(secured: SecuredServers, *, password: str | None = None) -> dict[str, Any]:
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": secured.kafka_sasl_username,
        "sasl_plain_password": secured.kafka_sasl_password if password is None else password,
        "ssl_context": create_ssl_context(cafile=str(secured.kafka_ca)),
    }


def mtls_options(secured: SecuredServers) -> dict[str, Any]:
    return {
        "security_protocol": "SSL",
        "ssl_context": create_ssl_context(
            cafile=str(secured.kafka_ca),
            certfile=str(secured.kafka_client_cert),
            keyfile=str(secured.kafka_client_key),
        ),
    }


async def round_trip(bootstrap: str, options: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    """Creates a topic, produces one record and consumes it back, all through `bootstrap`."""
    topic = f"secured.{uuid.uuid4().hex}"
    common = {"bootstrap_servers": bootstrap, "request_timeout_ms": REQUEST_TIMEOUT_MS} | options
    admin = AIOKafkaAdminClient(**common)
    await bounded(admin.start())
    try:
        await bounded(
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(acks="all", **common)
    await bounded(producer.start())
    try:
        await bounded(producer.send_and_wait(topic, b"over tls", key=b"k"))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", group_id=f"secured-{uuid.uuid4().hex}", **common
    )
    await bounded(consumer.start())
    try:
        record = await bounded(consumer.getone())
    finally:
        await consumer.stop()
    return record.key, record.value


async def test_a_message_goes_through_the_sasl_ssl_listener_with_scram_sha_512(
    secured: SecuredServers,
) -> None:
    assert await round_trip(secured.kafka_sasl_ssl_bootstrap, sasl_ssl_options(secured)) == (
        b"k",
        b"over tls",
    )


async def test_a_wrong_scram_password_is_refused(secured: SecuredServers) -> None:
    host, port = split_host_port(secured.kafka_sasl_ssl_bootstrap)
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        await bounded(
            create_conn(
                host,
                port,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                **sasl_ssl_options(secured, password="not-the-password"),
            )
        )
    # What a producer makes of it: it cannot bootstrap at all.
    producer = AIOKafkaProducer(
        bootstrap_servers=secured.kafka_sasl_ssl_bootstrap,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **sasl_ssl_options(secured, password="not-the-password"),
    )
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await bounded(producer.start())
    finally:
        await producer.stop()


async def test_a_client_trusting_another_ca_rejects_the_brokers_certificate(
    secured: SecuredServers, foreign_ca: Path
) -> None:
    host, port = split_host_port(secured.kafka_sasl_ssl_bootstrap)
    options = sasl_ssl_options(secured) | {
        "ssl_context": create_ssl_context(cafile=str(foreign_ca))
    }
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await bounded(create_conn(host, port, request_timeout_ms=REQUEST_TIMEOUT_MS, **options))


async def test_a_message_goes_through_the_mtls_listener_with_the_client_certificate(
    secured: SecuredServers,
) -> None:
    assert await round_trip(secured.kafka_mtls_bootstrap, mtls_options(secured)) == (
        b"k",
        b"over tls",
    )


async def test_the_mtls_listener_refuses_a_client_without_a_certificate(
    secured: SecuredServers,
) -> None:
    host, port = split_host_port(secured.kafka_mtls_bootstrap)
    # The client trusts the broker; only its own certificate is missing.
    no_cert = create_ssl_context(cafile=str(secured.kafka_ca))
    with pytest.raises(KafkaConnectionError, match="closed") as refused:
        await bounded(
            create_conn(
                host,
                port,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                security_protocol="SSL",
                ssl_context=no_cert,
            )
        )
    # With TLS 1.3 the client's handshake completes before the broker checks for a certificate;
    # the broker's alert then closes the connection under the first request.
    cause = refused.value.__cause__
    assert isinstance(cause, ssl.SSLError), repr(cause)
    assert "CERTIFICATE" in str(cause.reason), repr(cause)


async def test_the_tls_role_connects_to_postgres_with_verify_full_and_the_ca(
    secured: SecuredServers,
) -> None:
    assert dict(parse_qsl(urlsplit(secured.database_tls_url).query))["sslmode"] == "verify-full"
    conn = await bounded(asyncpg.connect(secured.database_tls_url, timeout=STEP_SECONDS))
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS who, s.ssl FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["who"], row["ssl"]) == ("fulfillment_tls", True)


async def test_the_tls_role_is_refused_without_tls(secured: SecuredServers) -> None:
    plain = with_query(secured.database_tls_url, sslmode="disable")
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await bounded(asyncpg.connect(plain, timeout=STEP_SECONDS))


async def test_postgres_over_tls_is_refused_by_a_client_trusting_another_ca(
    secured: SecuredServers, foreign_ca: Path
) -> None:
    elsewhere = with_query(secured.database_tls_url, sslrootcert=str(foreign_ca))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await bounded(asyncpg.connect(elsewhere, timeout=STEP_SECONDS))
