"""Dedupe records do not grow without bound (R6): the sweeper deletes those older than the
retention, in chunks, keeps the younger ones, and does it through the processed_at index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service.adapters import postgres
from service.adapters.postgres import sql
from service.adapters.sweeper import PRUNE_CHUNK
from service.bootstrap.service import build_sweeper

pytestmark = pytest.mark.integration

DAY = 24 * 3600


async def test_the_sweeper_prunes_dedupe_records_past_their_retention_and_keeps_the_rest(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings(dedupe_retention_seconds=7 * DAY)
    old = PRUNE_CHUNK + 1234  # more than one chunk
    await pool.execute(
        "INSERT INTO processed_events (source, event_id, processed_at) "
        "SELECT 'tests', 'old-' || i, now() - interval '8 days' - i * interval '1 second' "
        "FROM generate_series(1, $1) AS i",
        old,
    )
    await pool.execute(
        "INSERT INTO processed_events (source, event_id, processed_at) "
        "SELECT 'tests', 'young-' || i, now() - interval '6 days' "
        "FROM generate_series(1, 500) AS i"
    )
    sweeper = build_sweeper(settings, pool)

    assert await sweeper.prune_once() == old
    left = await pool.fetch("SELECT event_id FROM processed_events")
    assert len(left) == 500
    assert all(r["event_id"].startswith("young-") for r in left)
    assert await sweeper.prune_once() == 0


async def test_a_prune_with_nothing_due_reads_the_index_not_the_table(
    pool: postgres.Pool,
) -> None:
    await pool.execute(
        "INSERT INTO processed_events (source, event_id) "
        "SELECT 'tests', 'e-' || i FROM generate_series(1, 20000) AS i"
    )
    # Right after the inserts, before any ANALYZE: the case a fresh deployment is in.
    plan = await pool.fetchval(
        f"EXPLAIN (FORMAT JSON) {sql.PRUNE_PROCESSED}",
        timedelta(days=14),
        PRUNE_CHUNK,
    )
    assert "processed_events_by_age" in plan
    assert "Seq Scan" not in plan
