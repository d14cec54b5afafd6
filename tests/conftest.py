"""Session-wide fixtures: real Kafka and PostgreSQL, started (or found) once per test session;
each test gets its own database, topics and consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from service.adapters import postgres
from service.adapters.postgres import migrate
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from tests import cluster as three_brokers
from tests.servers import Servers, provide


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with provide() as found:
        yield found


@pytest.fixture(scope="session")
async def cluster() -> three_brokers.Cluster:
    """The three-broker cluster (`make up-cluster`), every node serving; a test that stops a
    broker starts it again (`Cluster.brokers_down`)."""
    found = three_brokers.provide()
    await found.ensure_whole()
    return found


async def create_database(servers: Servers) -> str:
    """A new, migrated database on the test server; returns its DSN."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = urlsplit(servers.database_url)._replace(path="/" + name).geturl()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(servers: Servers, dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(servers.database_url)
    try:
        for attempt in range(10):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                # An autovacuum worker in the database: FORCE may not end it without
                # pg_signal_backend (`make up` grants it); it finishes on its own.
                if attempt == 9:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@pytest.fixture
async def fresh_dsn(servers: Servers) -> AsyncIterator[str]:
    """A new, migrated database for one test, dropped afterwards."""
    dsn = await create_database(servers)
    yield dsn
    await drop_database(servers, dsn)


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[postgres.Pool]:
    created = await postgres.create_pool(fresh_dsn, size=4)
    yield created
    await created.close()


def settings_for(servers: Servers, dsn: str, suffix: str, **overrides: Any) -> Settings:
    """Settings on the database `dsn`, with topics and a group named by `suffix`; overrides
    by field name."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": servers.kafka_bootstrap,
        "database_url": dsn,
        "group_id": f"test-{suffix}",
        "topic_payments": f"payments.completed.{suffix}",
        "topic_acceptances": f"mechanics.accepted.{suffix}",
        "topic_ended": f"sessions.ended.{suffix}",
        "topic_sessions": f"sessions.events.{suffix}",
        "topic_dlq": f"fulfillment.dlq.{suffix}",
        "topic_partitions": 3,
        "sweep_interval_seconds": 0.5,
        "relay_poll_interval_seconds": 0.2,
        "retry_backoff_max_seconds": 1.0,
        "log_format": "json",
        # Instances run side by side (and other test runs on the machine): free ports.
        "http_host": "127.0.0.1",
        "http_port": 0,
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def make_settings(servers: Servers, fresh_dsn: str) -> AsyncIterator[Any]:
    """Settings for one test: its own database, topics and group; overrides by field name.
    The topics are deleted afterwards."""
    suffix = uuid.uuid4().hex[:10]
    made: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        settings = settings_for(servers, fresh_dsn, suffix, **overrides)
        made.append(settings)
        return settings

    yield make
    await delete_topics(made)


async def delete_topics(made: list[Settings]) -> None:
    """Deletes a test's topics from each cluster its settings named (best effort: a test that
    stopped a broker may leave them). A broker holds files open for every partition it keeps,
    so a long-lived local broker would otherwise run out of them after a few whole runs."""
    clusters = {s.kafka_bootstrap_servers: s for s in made}
    for settings in clusters.values():
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10), Clients(settings).started_admin() as admin:
                await admin.delete_topics(settings.topics.all())
