"""Offset commits off the consumer's path, on the real stack: a batch is decided while the
previous batch's offset commit is still on its way, commits stay in order behind it, and a
commit that times out is tried again without waiting for a later batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from structlog.testing import capture_logs

from service.adapters.kafka import offsets
from service.adapters.kafka.consumer import ConsumerLoop
from service.bootstrap.factory import Clients
from service.bootstrap.service import build_decider
from service.config.settings import Settings
from tests.fault.tools import Offsets, fetchval, wait_until, wall_now
from tests.harness import Producer

pytestmark = pytest.mark.fault

Commit = Callable[..., Awaitable[None]]


@asynccontextmanager
async def consuming(
    settings: Settings, wrap: Callable[[Commit], Commit]
) -> AsyncIterator[AIOKafkaConsumer]:
    """One consumer loop (no relay) whose offset commits go through `wrap(real commit)`; stopped
    on exit, which commits what it decided."""
    clients = Clients(settings)
    pool = await clients.pool(size=4)
    producer = clients.producer()
    await producer.start()
    consumer = clients.consumer()
    consumer.commit = wrap(consumer.commit)
    loop = ConsumerLoop(settings, consumer, producer, build_decider(settings, pool))
    loop.subscribe()
    await consumer.start()
    task = asyncio.create_task(loop.run())
    try:
        yield consumer
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)
        await consumer.stop()
        await producer.stop()
        await pool.close()


async def _payments(settings: Settings) -> int:
    count: int = await fetchval(settings.dsn, "SELECT count(*) FROM payments")
    return count


@pytest.mark.timeout(90)
async def test_a_batch_is_decided_while_the_previous_batch_s_offset_commit_is_on_its_way(
    make_settings: Any,
) -> None:
    settings = make_settings()
    release = asyncio.Event()
    calls: list[dict[Any, Any]] = []

    waiting = asyncio.Event()  # set while the first commit waits for its answer

    def held_first(commit: Commit) -> Commit:
        async def wrapped(offsets: dict[Any, Any] | None = None) -> None:
            calls.append(dict(offsets or {}))
            if len(calls) == 1:
                waiting.set()
                try:
                    await release.wait()  # the coordinator has not answered yet
                finally:
                    waiting.clear()
            await commit(offsets)

        return wrapped

    now = wall_now()
    async with (
        Producer(settings) as producer,
        Offsets(settings) as group,
        consuming(settings, held_first),
    ):
        await producer.pay(uuid.uuid4(), "pi_first", time=now)
        await wait_until(lambda: _answer(len(calls) == 1), within=30)
        assert await _payments(settings) == 1

        await producer.pay(uuid.uuid4(), "pi_second", time=now)
        # Decided although the first batch's commit has not returned.
        await wait_until(lambda: _is(_payments(settings), 2), within=20)
        assert waiting.is_set()
        assert len(calls) == 1  # the second batch's commit waits behind the first: in order
        assert await group.committed() == {}

        release.set()
        await wait_until(lambda: _is(group.lag(), 0), within=20)
    assert len(calls) == 2


@pytest.mark.timeout(90)
async def test_an_offset_commit_that_times_out_is_tried_again_without_a_later_batch(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offsets, "COMMIT_TIMEOUT", 0.5)
    monkeypatch.setattr(offsets, "RETRY_AFTER", 0.1, raising=False)
    settings = make_settings()
    calls = 0

    def first_never_answers(commit: Commit) -> Commit:
        async def wrapped(offsets: dict[Any, Any] | None = None) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.Event().wait()  # a coordinator that never answers
            await commit(offsets)

        return wrapped

    with capture_logs() as logs:
        async with (
            Producer(settings) as producer,
            Offsets(settings) as group,
            consuming(settings, first_never_answers),
        ):
            await producer.pay(uuid.uuid4(), "pi_once", time=wall_now())
            await wait_until(lambda: _answer(calls >= 1), within=30)
            # Committed while the loop keeps running, with nothing else to fetch.
            await wait_until(lambda: _is(group.lag(), 0), within=20)

    assert calls >= 2
    assert [e for e in logs if e["event"] == "offset_commit_timed_out"]


async def _answer(value: bool) -> bool:
    return value


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
