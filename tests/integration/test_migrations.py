"""Migrations on the real PostgreSQL: `fulfillment migrate` applies what is pending and nothing
twice, and the service refuses to run on a database that lacks a migration it needs."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from service.adapters.postgres import migrate
from service.adapters.postgres.migrate import DatabaseBehind
from service.bootstrap.service import Service
from tests.servers import Servers

pytestmark = pytest.mark.integration

ALL = [f"{m.version:04d}_{m.name}" for m in migrate.available()]


@pytest.fixture
async def empty_dsn(servers: Servers) -> AsyncIterator[str]:
    """A new database with nothing in it, dropped afterwards."""
    name = f"test_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield servers.database_url.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _fulfillment_migrate(dsn: str) -> list[str]:
    """Runs the real command line; returns the migrations it reports as applied."""
    env = os.environ | {"FULFILLMENT_DATABASE_URL": dsn, "FULFILLMENT_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.entrypoints.cli",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    [migrated] = [line for line in lines if line.get("event") == "migrated"]
    applied: list[str] = migrated["applied"]
    return applied


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


@pytest.mark.timeout(60)
async def test_migrate_applies_every_migration_once_and_is_a_no_op_the_second_time(
    empty_dsn: str,
) -> None:
    assert await _fulfillment_migrate(empty_dsn) == ALL
    tables = await _tables(empty_dsn)
    assert {"customers", "sessions", "payments", "processed_events", "outbox"} <= tables
    conn = await asyncpg.connect(empty_dsn)
    try:
        customer = uuid.uuid4()
        await conn.execute("INSERT INTO customers (id) VALUES ($1)", customer)
        assert await _fulfillment_migrate(empty_dsn) == []
        # Nothing recreated or dropped: the data is still there, each version recorded once.
        assert await conn.fetchval("SELECT count(*) FROM customers WHERE id = $1", customer) == 1
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in migrate.available()]
    finally:
        await conn.close()
    assert await _tables(empty_dsn) == tables


@pytest.mark.timeout(60)
async def test_concurrent_migrate_runs_on_an_empty_database_apply_each_migration_exactly_once(
    empty_dsn: str,
) -> None:
    """Several instances starting at once, each migrating first (as a deploy does)."""
    conns = [await asyncpg.connect(empty_dsn) for _ in range(4)]
    try:
        ran = await asyncio.gather(*(migrate.migrate(conn) for conn in conns))
        applied = sorted(f"{m.version:04d}_{m.name}" for run in ran for m in run)
        assert applied == ALL
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(ALL)
    finally:
        for conn in conns:
            await conn.close()


async def test_the_service_refuses_to_start_on_a_database_that_is_behind(
    make_settings: Any, empty_dsn: str
) -> None:
    settings = make_settings(database_url=empty_dsn)
    with pytest.raises(DatabaseBehind) as refused:
        await asyncio.wait_for(Service(settings).run(), timeout=30)
    assert ALL[0] in str(refused.value)
    assert "fulfillment migrate" in str(refused.value)
    assert await _tables(empty_dsn) == set()  # it did not migrate behind anyone's back


async def test_the_service_refuses_a_database_with_a_migration_missing_from_its_record(
    make_settings: Any, fresh_dsn: str
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", 1)
    finally:
        await conn.close()
    with pytest.raises(DatabaseBehind):
        await asyncio.wait_for(Service(make_settings()).run(), timeout=30)
