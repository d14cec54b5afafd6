"""`fulfillment purge-stale [--dry-run]`: close every session that is due now (a waiting session
past its `expires_at`, a live one past the maximum live time), through the sweeper's own path
(`handlers/sweep.py`), so each gets the very `session.cancelled` or `session.completed`
(`timed_out`) the sweeper or the purge would have made, published by the running service's
relay. A parked customer is left alone, as the sweeper leaves them: their release decides
what is due. `--dry-run` decides the same with the same pure function and writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.adapters.postgres.migrate import check_migrations
from service.adapters.sweeper import SWEEP_CHUNK
from service.bootstrap.factory import Clients
from service.bootstrap.service import build_sweeper
from service.config.settings import Settings
from service.core.batch import BatchResult, sweep
from service.entrypoints import output
from service.entrypoints.database import operator_store


async def purge_stale(settings: Settings, *, dry_run: bool = False, as_json: bool = False) -> int:
    now = datetime.now(UTC)
    if dry_run:
        results = [await _would_close(settings, now)]
    else:
        pool = await Clients(settings).pool(size=1)
        try:
            await check_migrations(pool)
            results = await build_sweeper(settings, pool, clock=lambda: now).sweep_once()
        finally:
            await pool.close()
    closed = [
        {
            "session_id": d.session_id,
            "customer_id": d.customer_id,
            "outcome": d.outcome.label,
        }
        for result in results
        for d in result.decisions
    ]
    if as_json:
        output.emit_json({"dry_run": dry_run, "now": now, "closed": closed})
    else:
        verb = "would close" if dry_run else "closed"
        for row in closed:
            print(f"{row['session_id']} of {row['customer_id']}: {row['outcome']}")
        print(f"{verb} {len(closed)} stale session(s) as of {now.isoformat()}")
    return output.OK


async def _would_close(settings: Settings, now: datetime) -> BatchResult:
    async with operator_store(settings) as store:
        due = await store.due_customers(now=now, max_live=settings.max_live, limit=10 * SWEEP_CHUNK)
        sessions = await store.active_sessions(due)
    return sweep(sessions, now=now, policy=settings.policy, run_id=_run_id(now))


def _run_id(now: datetime) -> str:
    return f"sweep@{now.isoformat()}"
