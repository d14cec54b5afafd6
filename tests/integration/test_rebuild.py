"""`fulfillment rebuild` on the real stack: the live run's decisions re-made byte for byte into
an empty database, the boundary cases between the sweeper and late events included."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.core.batch import BatchResult
from service.entrypoints.rebuild import rebuild
from service.reprocess.history import replaced
from service.reprocess.rebuild import Order
from tests.conftest import create_database, drop_database
from tests.fault.tools import wall_now
from tests.harness import Outcomes, Producer, running
from tests.integration.reprocess_history import (
    MAX_LIVE_SECONDS,
    ORDINARY,
    TTL_SECONDS,
    live_history,
    rows,
    short_timers,
    sid,
)
from tests.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

STATE = (
    "SELECT id, customer_id, payment_id, session_type, status, created_at, expires_at, "
    "created_event_id, mechanic_id, accepted_at, accepted_event_id, closed_at, close_reason "
    "FROM sessions ORDER BY id"
)
PAYMENTS = "SELECT * FROM payments ORDER BY payment_id"
ORDINARY_SESSIONS = {sid(f"pi-o{i}") for i in range(ORDINARY)}


async def no_sweep(*_: Any, **__: Any) -> BatchResult:
    """The sweeper acts on the wall clock: held back, so only the new payment decides."""
    return BatchResult((), (), (), (), ())


def summary(out: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_rebuild_re_makes_every_published_decision_byte_for_byte(
    make_settings: Any,
    pool: postgres.Pool,
    fresh_dsn: str,
    empty_dsn: str,
    capsys: pytest.CaptureFixture[str],
    workers: int,
) -> None:
    settings = short_timers(make_settings)
    history = await live_history(settings, pool)
    capsys.readouterr()
    shadow = f"{settings.topic_sessions}.shadow"

    code = await rebuild(
        settings, database_url=empty_dsn, as_json=True, shadow_topic=shadow, workers=workers
    )

    result = summary(capsys.readouterr().out)
    assert result["differences"] == []
    assert (code, result["differ"], result["remade"]) == (0, 0, history.outputs)
    assert await rows(empty_dsn, STATE) == await rows(fresh_dsn, STATE)
    assert await rows(empty_dsn, PAYMENTS) == await rows(fresh_dsn, PAYMENTS)
    # Published to the shadow topic only, and gone from the outbox: the service started on the
    # rebuilt database has nothing to send again.
    assert await rows(empty_dsn, "SELECT * FROM outbox") == []
    async with Outcomes(settings, topic=shadow) as shadowed:
        await shadowed.wait_count(history.outputs)
    assert {r.value for r in shadowed.records} == {schemas.encode(e) for e in history.events}

    # The service on the rebuilt database continues from the group's committed offsets.
    rebuilt = replaced(settings, database_url=empty_dsn)
    customer = history.customers[-1]
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(rebuilt, sweep=no_sweep),
    ):
        await outcomes.wait_count(history.outputs)
        await producer.pay(customer, "pi-after-rebuild", time=wall_now())
        await outcomes.wait_count(history.outputs + 1)
        await asyncio.sleep(1.0)  # time for anything decided twice to show
    after = outcomes.records[history.outputs :]
    assert [schemas.decode_output(r.value).type for r in after] == [schemas.SESSION_CREATED]


async def test_a_rebuild_of_a_binary_mode_history_re_makes_every_decision_with_no_difference(
    make_settings: Any,
    pool: postgres.Pool,
    fresh_dsn: str,
    empty_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Inputs sent in binary mode by the CloudEvents SDK, outputs published in binary mode:
    both read back with their headers, so every input decides and every output compares."""
    settings = short_timers(make_settings, output_content_mode="binary")
    history = await live_history(settings, pool, binary_inputs=True)
    capsys.readouterr()

    code = await rebuild(settings, database_url=empty_dsn, as_json=True)

    result = summary(capsys.readouterr().out)
    assert result["differences"] == []
    assert (code, result["differ"], result["remade"]) == (0, 0, history.outputs)
    assert result["unreachable"] == 0
    assert await rows(empty_dsn, STATE) == await rows(fresh_dsn, STATE)
    assert await rows(empty_dsn, PAYMENTS) == await rows(fresh_dsn, PAYMENTS)


async def test_a_rebuild_refuses_a_database_that_is_not_empty(
    make_settings: Any, fresh_dsn: str, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    await pool.execute("INSERT INTO customers (id) VALUES (gen_random_uuid())")

    assert await rebuild(settings, database_url=fresh_dsn) == 1
    assert "not empty (customers hold rows)" in capsys.readouterr().err


async def test_a_rebuild_with_a_changed_rule_reports_the_decisions_it_changes(
    make_settings: Any, pool: postgres.Pool, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = short_timers(make_settings)
    published = (await live_history(settings, pool)).events
    capsys.readouterr()
    longer_ttl = make_settings(request_ttl_seconds=60, max_live_seconds=settings.max_live_seconds)

    code = await rebuild(longer_ttl, database_url=empty_dsn, as_json=True)

    result = summary(capsys.readouterr().out)
    differ = {d["id"]: d for d in result["differences"]}
    created = {e.id for e in published if e.type == schemas.SESSION_CREATED}
    cancelled = {e.id for e in published if e.type == schemas.SESSION_CANCELLED}
    assert code == 1 and result["differ"] == len(differ) > 0
    # Every session's expires_at moved; no waiting session expired where one had live.
    assert created <= set(differ) and cancelled <= set(differ)
    assert all(differ[i]["got"] is None for i in cancelled)
    # Not a kind a rebuild knows: the rule changed. (The payment stamped just before an expiry
    # the sweeper acted on is now rejected: that one reads as sweeper timing.)
    created_ordinary = {
        e.id
        for e in published
        if e.type == schemas.SESSION_CREATED and e.data.session_id in ORDINARY_SESSIONS
    }
    assert {differ[i]["explanation"] for i in created_ordinary} == {"unexplained"}
    # An acceptance well inside either TTL is decided as before, byte for byte.
    ordinary = {
        e.id
        for e in published
        if e.type == schemas.SESSION_ACCEPTED and e.data.session_id in ORDINARY_SESSIONS
    }
    assert ordinary and not ordinary & set(differ)


async def test_a_rebuild_in_arrival_order_explains_what_the_changelog_s_order_avoids(
    make_settings: Any, pool: postgres.Pool, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = short_timers(make_settings)
    await live_history(settings, pool)
    capsys.readouterr()

    code = await rebuild(settings, database_url=empty_dsn, order="arrival", as_json=True)

    result = summary(capsys.readouterr().out)
    kinds = {d["explanation"] for d in result["differences"]}
    assert code == 1
    assert kinds == {"cross_topic_order", "sweeper_timing"}
    by_kind = {d["expected"]["value"] for d in result["differences"] if d["expected"]} | {
        d["got"]["value"] for d in result["differences"] if d["got"]
    }
    assert any('"reason":"unknown_session"' in v for v in by_kind)


async def test_a_rebuild_into_something_that_is_not_a_database_url_says_so_in_one_line(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await rebuild(make_settings(), database_url="not-a-url")

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "fulfillment rebuild: --database-url: not a PostgreSQL URL (postgresql://user@host/db)"
    ]


# Every table a rebuild fills, but the time columns PostgreSQL stamps (processed_at, parked_at).
TABLES = (
    STATE,
    PAYMENTS,
    "SELECT id FROM customers ORDER BY id",
    "SELECT source, event_id FROM processed_events ORDER BY source, event_id",
    "SELECT seq, customer_id, source, event_id, type, body, reason FROM parked_events ORDER BY seq",
    "SELECT * FROM outbox",
)


@pytest.mark.parametrize("order", ["published", "arrival"])
async def test_a_rebuild_in_two_workers_leaves_the_database_and_the_comparison_of_one(
    make_settings: Any,
    pool: postgres.Pool,
    empty_dsn: str,
    servers: Servers,
    capsys: pytest.CaptureFixture[str],
    order: Order,
) -> None:
    settings = short_timers(make_settings)
    history = await live_history(settings, pool)
    # Differences for the two comparisons to agree on: in the changelog's order, from a changed
    # rule; in arrival order, from the order itself. Its closings are a sweep at the wall clock:
    # every deadline of the history is past before the first rebuild, or the second could close
    # a session the first left live. Its last events are stamped up to a request's TTL after its
    # start, and a session accepted then stays live for the longest live time.
    last_deadline = history.started + timedelta(seconds=TTL_SECONDS + MAX_LIVE_SECONDS + 1)
    await asyncio.sleep(max(0.0, (last_deadline - wall_now()).total_seconds()))
    rule = settings
    if order == "published":
        rule = make_settings(request_ttl_seconds=60, max_live_seconds=settings.max_live_seconds)
    second = await create_database(servers)
    try:
        capsys.readouterr()
        outcomes = []
        for dsn, workers in ((empty_dsn, 1), (second, 2)):
            code = await rebuild(rule, database_url=dsn, order=order, as_json=True, workers=workers)
            found = summary(capsys.readouterr().out)
            del found["seconds"]
            outcomes.append((code, found))

        assert outcomes[0][1]["differ"] > 0
        assert outcomes[1] == outcomes[0]
        for query in TABLES:
            assert await rows(second, query) == await rows(empty_dsn, query)
    finally:
        await drop_database(servers, second)


def rebuild_workers() -> list[int]:
    """This process's children that are rebuild workers."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if parent == os.getpid() and b"service.reprocess.rebuild_parts" in command:
            found.append(int(stat.parent.name))
    return found


async def kill_a_worker_once_started() -> int:
    while True:
        if found := rebuild_workers():
            os.kill(found[0], signal.SIGKILL)
            return found[0]
        await asyncio.sleep(0.005)


async def test_a_rebuild_whose_worker_is_killed_fails_in_one_line_and_leaves_no_process(
    make_settings: Any, pool: postgres.Pool, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = short_timers(make_settings)
    await live_history(settings, pool)
    capsys.readouterr()
    killing = asyncio.ensure_future(kill_a_worker_once_started())

    code = await rebuild(settings, database_url=empty_dsn, as_json=True, workers=2)

    await asyncio.wait_for(killing, 1)
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "fulfillment rebuild: a rebuild worker exited -9 without its result"
    ]
    assert rebuild_workers() == []
