"""`fulfillment purge-stale` on the real PostgreSQL: the due sessions are closed through the
sweeper's own path, each with its `session.cancelled` (or timed-out `session.completed`) in the
outbox; a dry run says the same and writes nothing; a second run finds nothing due."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from structlog.testing import capture_logs

import schemas
from service.adapters import postgres
from service.entrypoints import output
from service.entrypoints.purge_stale import purge_stale
from service.handlers.consume import handle_batch
from tests.unit.core.builders import POLICY, T0, acceptance, minutes, payment, session_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def purge(settings: Any, capsys: pytest.CaptureFixture[str], **kw: Any) -> Any:
    capsys.readouterr()
    with capture_logs():
        code = await purge_stale(settings, as_json=True, **kw)
    return code, json.loads(capsys.readouterr().out)


async def test_purge_stale_closes_the_due_sessions_each_with_its_event_and_a_dry_run_writes_nothing(
    make_settings: Any, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    waiting, live = uuid4(), uuid4()
    async with postgres.store_of(pool) as store:
        # Days ago: the wait expired 15 minutes later, the live session timed out after 4 hours.
        await handle_batch(
            store,
            [
                payment("w-1", waiting),
                payment("l-1", live),
                acceptance(session_of("l-1"), at=T0 + minutes(1)),
            ],
            policy=POLICY,
        )
    outbox = "SELECT count(*) FROM outbox"
    before = await pool.fetchval(outbox)

    code, dry = await purge(settings, capsys, dry_run=True)
    assert code == output.OK and dry["dry_run"] is True
    assert sorted(c["outcome"] for c in dry["closed"]) == [
        "cancelled:expired",
        "completed:timed_out",
    ]
    assert await pool.fetchval(outbox) == before
    assert (
        await pool.fetchval("SELECT count(*) FROM sessions WHERE status IN ('waiting','live')") == 2
    )

    code, done = await purge(settings, capsys)
    assert code == output.OK
    assert sorted((c["session_id"], c["outcome"]) for c in done["closed"]) == sorted(
        [
            (str(session_of("w-1")), "cancelled:expired"),
            (str(session_of("l-1")), "completed:timed_out"),
        ]
    )
    values = [r["value"] for r in await pool.fetch("SELECT value FROM outbox ORDER BY seq")]
    types = [schemas.decode_output(v).type for v in values[before:]]
    assert sorted(types) == [schemas.SESSION_CANCELLED, schemas.SESSION_COMPLETED]
    assert (
        await pool.fetchval("SELECT count(*) FROM sessions WHERE status IN ('waiting','live')") == 0
    )

    code, again = await purge(settings, capsys)
    assert code == output.OK and again["closed"] == []
