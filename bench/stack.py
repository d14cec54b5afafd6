"""The benchmark's own corner of the local servers: fresh databases, unique topics and group,
and the settings (as `FULFILLMENT_*` variables too) that point the service at them."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from service.config.settings import ENV_PREFIX, Settings

FULFILLMENT = Path(sys.prefix) / "bin" / "fulfillment"
DEFAULT_DATABASE_URL = (
    "postgresql://fulfillment:fulfillment@127.0.0.1:5432/fulfillment?sslmode=disable"
)


@dataclass(frozen=True, slots=True)
class Servers:
    kafka: str
    # Any database on the server: only used to create and drop the benchmark's own.
    database_url: str

    def dsn(self, database: str) -> str:
        return urlsplit(self.database_url)._replace(path="/" + database).geturl()


def servers_from_env() -> Servers:
    """The same variables as the tests (`make bench` sets them), with the local stack's defaults."""
    return Servers(
        kafka=os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        database_url=os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
    )


class Databases:
    """Creates databases migrated by `fulfillment migrate`, and drops every one of them at
    `drop_all` (call it in finally)."""

    def __init__(self, servers: Servers) -> None:
        self._servers = servers
        self._created: list[str] = []

    async def create(self, name: str) -> str:
        """Returns the new database's DSN. Raises asyncpg's PostgresError (e.g. no CREATEDB), or
        RuntimeError when the migration fails (its error on stderr)."""
        admin = await asyncpg.connect(self._servers.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self._created.append(name)
        dsn = self._servers.dsn(name)
        code = await fulfillment({"database_url": dsn}, "migrate", quiet=True)
        if code != 0:
            raise RuntimeError(f"fulfillment migrate exited {code} for {name}")
        return dsn

    async def drop(self, name: str) -> None:
        """Raises asyncpg's PostgresError when the database is still in use after a few tries."""
        admin = await asyncpg.connect(self._servers.database_url)
        try:
            for attempt in range(5):
                # Plain DROP first: it stops an autovacuum worker busy in that database, which
                # WITH (FORCE) may not (that needs rights over the superuser's processes);
                # FORCE then ends sessions of our own that a failure left open.
                force = " WITH (FORCE)" if attempt % 2 else ""
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
                    break
                except (asyncpg.ObjectInUseError, asyncpg.InsufficientPrivilegeError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(1)
        finally:
            await admin.close()
        if name in self._created:
            self._created.remove(name)

    async def drop_all(self) -> list[str]:
        """Drops what is left; returns one line per database it could not drop (never raises:
        it runs in a finally, where an error would hide the one that got us there)."""
        problems = []
        for name in list(self._created):
            try:
                await self.drop(name)
            except Exception as error:
                problems.append(f"could not drop database {name}: {error}")
        return problems


TABLE_STATS = (
    "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan, n_live_tup, "
    "n_dead_tup, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables "
    "WHERE relname <> 'schema_migrations' ORDER BY seq_tup_read DESC, relname"
)


@dataclass(frozen=True, slots=True)
class TableStats:
    name: str
    seq_scans: int
    seq_rows_read: int
    index_scans: int
    live: int
    dead: int
    autovacuums: int
    autoanalyzes: int

    def __str__(self) -> str:
        return (
            f"{self.name:<17} seq scans {self.seq_scans:>5,} reading {self.seq_rows_read:>12,} "
            f"rows; index scans {self.index_scans:>7,}; rows {self.live:>7,} live "
            f"{self.dead:>7,} dead; autovacuum {self.autovacuums}, autoanalyze {self.autoanalyzes}"
        )


async def table_stats(dsn: str) -> list[TableStats]:
    """How the service's statements reached its tables: a sequential scan reading many rows
    means a plan went wrong (see bench/README.md)."""
    conn = await asyncpg.connect(dsn)
    try:
        return [TableStats(*row.values()) for row in await conn.fetch(TABLE_STATS)]
    finally:
        await conn.close()


def overrides(servers: Servers, dsn: str, suffix: str) -> dict[str, Any]:
    """What the benchmark changes from the service's defaults: where to read and write. The
    rest (instances: `auto`, one per usable CPU; consumers, batch size, relay, sweeper, logging)
    stays as shipped; `--set processes=1` measures a single process."""
    return {
        "kafka_bootstrap_servers": servers.kafka,
        "database_url": dsn,
        "group_id": f"bench-{suffix}",
        "topic_payments": f"payments.completed.{suffix}",
        "topic_acceptances": f"mechanics.accepted.{suffix}",
        "topic_ended": f"sessions.ended.{suffix}",
        "topic_sessions": f"sessions.events.{suffix}",
        "topic_dlq": f"fulfillment.dlq.{suffix}",
        "topic_partitions": 6,
    }


def settings_of(values: dict[str, Any]) -> Settings:
    # In-process, the bench reads only what `values` sets (names, servers, policy), and explicit
    # values win over any FULFILLMENT_* variable in its own environment.
    return Settings(**values)


def service_env(values: dict[str, Any]) -> dict[str, str]:
    """The child process's environment: ours without any FULFILLMENT_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env


async def fulfillment(values: dict[str, Any], *args: str, quiet: bool = False) -> int:
    """Runs the command `fulfillment ARGS...` configured by `values` alone, its output ours
    (`quiet`: only when it fails); returns its exit code. Raises OSError when it cannot start."""
    captured = asyncio.subprocess.PIPE if quiet else None
    process = await asyncio.create_subprocess_exec(
        str(FULFILLMENT),
        *args,
        env=service_env(values),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=captured,
        stderr=asyncio.subprocess.STDOUT if quiet else None,
    )
    output, _ = await process.communicate()
    if quiet and process.returncode:
        sys.stderr.write(output.decode(errors="replace"))
    return process.returncode if process.returncode is not None else -1


async def delete_topics(settings: Settings) -> None:
    """Raises aiokafka's KafkaError when the broker refuses."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = settings.topics.all()
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
