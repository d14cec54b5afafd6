"""`fulfillment replay` on the real stack: reading everything again decides nothing new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from service.adapters import postgres
from service.adapters.kafka.admin import committed_offsets, live_members, topic_partitions
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from service.entrypoints.replay import replay
from service.simulation.stream import Simulation
from tests.harness import Outcomes, Producer, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# In the future, so the sweeper (which goes by the wall clock) leaves every decision to the
# events themselves.
T0 = datetime(2030, 1, 7, 9, 30, tzinfo=UTC)
SENT = 300


async def lag(settings: Settings) -> int:
    """Input messages the group has not committed yet."""
    clients = Clients(settings)
    async with clients.started_admin() as admin:
        tps = await topic_partitions(admin, list(settings.topics.input_types()))
        committed = await committed_offsets(admin, settings.group_id, tps)
    consumer = clients.consumer(group_id=None)
    await consumer.start()
    try:
        end = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return sum(end[tp] - max(0, committed[tp].offset) for tp in tps)


async def members(settings: Settings) -> list[str]:
    async with Clients(settings).started_admin() as admin:
        return await live_members(admin, settings.group_id)


async def settle(settings: Settings, pool: postgres.Pool, outcomes: Outcomes) -> None:
    """Until every input is committed, the outbox is empty and no outcome came for 2 s."""
    seen, quiet = -1, 0.0
    async with asyncio.timeout(90):
        while quiet < 2.0:
            await asyncio.sleep(0.5)
            outbox = await pool.fetchval("SELECT count(*) FROM outbox")
            busy = outbox or await lag(settings) or len(outcomes.records) != seen
            quiet = 0.0 if busy else quiet + 0.5
            seen = len(outcomes.records)


async def wait_until(condition: Any, within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.2)


def table(out: str) -> tuple[list[list[str]], int]:
    """The rows (topic, partition, committed, new, reprocess) and the total of a replay."""
    lines = out.strip().splitlines()
    # Skip whatever was printed before (structlog writes to stdout when unconfigured).
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("topic ")) + 1 :]
    rows = [line.split() for line in body if not line.startswith(("total", "note:"))]
    total = next(line for line in body if line.startswith("total")).split()[-1]
    return rows, int(total)


async def test_a_replay_from_the_earliest_offsets_decides_nothing_new(
    make_settings: Any, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(request_ttl_seconds=30)
    sim = Simulation(10, 7, topics=settings.topics, request_ttl=settings.request_ttl)
    messages = list(islice(sim.messages(T0, rate=2), SENT))
    async with (
        Outcomes(settings) as outcomes,
        Outcomes(settings, topic=settings.topic_dlq) as dead,
        Producer(settings) as producer,
    ):
        async with running(settings):
            for m in messages:
                await producer.send(m.topic, m.value, key=m.key, headers=list(m.headers))
                # A little air, so that most acceptances find their session already created.
                await asyncio.sleep(0.02)
            await settle(settings, pool, outcomes)
        decided = {e.id for e in outcomes.events}
        assert len(dead.records) == sum(not m.valid for m in messages)
        await wait_until(lambda: _none(members(settings)))
        capsys.readouterr()

        assert (
            await replay(settings, to_earliest=True, to_datetime=None, topics=None, dry_run=True)
            == 0
        )
        rows, total = table(capsys.readouterr().out)
        assert total == SENT
        assert len(rows) == 3 * settings.topic_partitions
        assert {r[0] for r in rows} == set(settings.topics.input_types())
        assert all(r[3] == "0" and r[2] == r[4] for r in rows)

        # Never forward past what is committed; by time, then, a future instant moves nothing.
        future = datetime.now(UTC) + timedelta(days=1)
        assert (
            await replay(settings, to_earliest=False, to_datetime=future, topics=None, dry_run=True)
            == 0
        )
        assert table(capsys.readouterr().out)[1] == 0

        async with running(settings):
            await wait_until(lambda: _some(members(settings)))
            refused = await replay(
                settings, to_earliest=True, to_datetime=None, topics=None, dry_run=False
            )
            stderr = capsys.readouterr().err
            assert refused == 1
            assert all(member.split()[0] in stderr for member in await members(settings))
        await wait_until(lambda: _none(members(settings)))
        assert await lag(settings) == 0

        assert (
            await replay(settings, to_earliest=True, to_datetime=None, topics=None, dry_run=False)
            == 0
        )
        assert table(capsys.readouterr().out)[1] == SENT
        assert await lag(settings) == SENT

        async with running(settings):
            await settle(settings, pool, outcomes)
        assert {e.id for e in outcomes.events} == decided
        # Dead letters are not deduplicated: the broken messages were read, and refused, again.
        assert len(dead.records) == 2 * sum(not m.valid for m in messages)


async def test_a_replay_of_one_topic_moves_only_that_topic(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    async with Producer(settings) as producer:
        for m in payments_and_acceptances(settings):
            await producer.send(m.topic, m.value, key=m.key)
    code = await replay(
        settings, to_earliest=True, to_datetime=None, topics=[settings.topic_payments], dry_run=True
    )
    rows, _total = table(capsys.readouterr().out)
    assert code == 0
    assert {r[0] for r in rows} == {settings.topic_payments}
    # Nothing committed yet: the group would start from the beginning anyway.
    assert all(r[2] == "-" and r[3] == "0" for r in rows)


async def test_a_replay_refuses_a_topic_that_is_not_an_input(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    code = await replay(
        settings,
        to_earliest=True,
        to_datetime=None,
        topics=[settings.topic_sessions],
        dry_run=False,
    )
    assert code == 2
    assert settings.topic_sessions in capsys.readouterr().err


def payments_and_acceptances(settings: Settings) -> list[Any]:
    sim = Simulation(3, 1, topics=settings.topics)
    return list(islice(sim.messages(T0), 20))


async def _none(found: Any) -> bool:
    return not await found


async def _some(found: Any) -> bool:
    return bool(await found)
