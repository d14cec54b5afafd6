"""What the proof records when the service has not recovered from a fault: how each
instance's way to PostgreSQL looks from its own proxies (the server each one reaches, whether
it is in recovery or read-only, as asyncpg decides a read-write host), and what each server's
sessions are doing. Lines for the runner's log; a failure to look is a line too."""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.connect_utils import SessionAttribute

from tests.proof.instances import Instance, hosts_of, through

LOOK_TIMEOUT = 5.0
SERVER_STATE = (
    "SELECT inet_server_port(), pg_is_in_recovery(), "
    "current_setting('default_transaction_read_only')"
)
SESSIONS = (
    "SELECT coalesce(application_name, ''), state, count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1, 2 ORDER BY 1, 2"
)


async def look(dsn: str, query: str) -> str:
    """The rows of `query` on a connection to the one host of `dsn` (any role), or the error."""
    try:
        conn = await asyncpg.connect(
            dsn, target_session_attrs=SessionAttribute.any, timeout=LOOK_TIMEOUT
        )
    except Exception as error:  # what a stalled service meets is the finding
        return f"connect failed: {error!r}"
    try:
        reported = conn.get_settings()
        rows = await asyncio.wait_for(conn.fetch(query), LOOK_TIMEOUT)
        seen = "; ".join(" ".join(str(value) for value in row.values()) for row in rows)
        hot = getattr(reported, "in_hot_standby", None)
        read_only = getattr(reported, "default_transaction_read_only", None)
        return f"{seen} (reported in_hot_standby={hot} default_transaction_read_only={read_only})"
    except Exception as error:
        return f"query failed: {error!r}"
    finally:
        conn.terminate()


async def stalled(instances: list[Instance], dsn: str) -> list[str]:
    """One line per instance proxy and per server: how the service's way to the database looks."""
    lines = []
    for instance in instances:
        proxied = instance.settings.database_url.get_secret_value()
        for proxy in instance.proxies:
            seen = await look(through(proxied, [proxy.port]), SERVER_STATE)
            lines.append(f"{instance.name} proxy :{proxy.port} ({proxy.state}): {seen}")
    for _, port in hosts_of(dsn):  # loopback, as every server of the proof
        direct = through(dsn, [port])
        lines.append(f"server :{port}: {await look(direct, SERVER_STATE)}")
        lines.append(f"server :{port} sessions: {await look(direct, SESSIONS)}")
    return lines
