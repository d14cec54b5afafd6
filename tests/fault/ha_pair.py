"""The local primary/standby pair of `stack.sh up ha` (deploy/README.md), for failover tests:
ports 5434 (ha_a, the primary) and 5435 (ha_b, its synchronous standby). Never the shared 5432.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from service.adapters.postgres import migrate

STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.sh"
PRIMARY_PORT = 5434
STANDBY_PORT = 5435
ADMIN = f"postgresql://fulfillment:fulfillment@127.0.0.1:{PRIMARY_PORT}/fulfillment?sslmode=disable"
# One user of the pair at a time on this machine: each promotes, stops and drops it.
LOCK = Path("/tmp/session-fulfillment-ha-pair.lock")


@contextlib.asynccontextmanager
async def exclusive() -> AsyncIterator[None]:
    """Holds the pair for the caller until exit, waiting for another holder to finish."""
    descriptor = os.open(LOCK, os.O_CREAT | os.O_WRONLY, 0o666)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


async def stack(*arguments: str) -> None:
    """`stack.sh ARGUMENTS`; raises with its output when it fails."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(STACK),
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"stack.sh {' '.join(arguments)} failed:\n{output.decode()}")


async def fresh_pair_database() -> str:
    """A fresh pair, a new migrated database on it; returns the URL an HA deployment would use:
    both hosts, and the one that takes writes."""
    await stack("up", "ha")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(ADMIN.replace("/fulfillment?", f"/{name}?"))
    try:
        await migrate.migrate(conn)
    finally:
        await conn.close()
    return (
        f"postgresql://fulfillment:fulfillment@127.0.0.1:{PRIMARY_PORT},127.0.0.1:{STANDBY_PORT}"
        f"/{name}?sslmode=disable&target_session_attrs=read-write"
    )
