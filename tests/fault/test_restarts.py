"""Crashes at the three places that matter, then a fresh instance on the same group and database:
before the database commit, between it and the offset commit, and while publishing the outbox.
Nothing is decided twice, nothing is lost, and what is published twice carries the same id."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.adapters.kafka.consumer import ConsumerLoop
from service.adapters.kafka.relay import Relay
from service.adapters.postgres import outbox
from service.adapters.postgres.store import PostgresStore
from service.bootstrap.factory import Clients
from service.bootstrap.service import build_decider
from service.config.settings import Settings
from service.core.batch import BatchResult, Snapshot, decide_batch
from service.core.ports import HandleBatch, OutboxRow, Store
from service.handlers.consume import handle_batch
from tests.fault.tools import (
    Crash,
    Offsets,
    fetchval,
    outcomes_by_payment,
    wait_drained,
    wait_until,
    wall_now,
)
from tests.harness import Outcomes, Producer, payment, running

pytestmark = pytest.mark.fault

CUSTOMERS = 6


async def _produce_stream(settings: Settings) -> dict[str, str]:
    """Per customer: a payment (created), a second one (rejected), the first again under a new
    event id (a duplicate: no outcome). 18 input events, 12 outcomes.

    Returns payment_id -> the id of its outcome as the pure core decides it for these very
    inputs from an empty state: what any run, crashed and restarted or not, must publish."""
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    now = wall_now()
    sent: list[schemas.InputEvent] = []
    decoder = schemas.Decoder(settings.topics.input_types())
    async with Producer(settings) as producer:
        for suffix, pay, minutes in (("a", "a", 0), ("b", "b", 1), ("a2", "a", 0)):
            values = [
                payment(
                    c,
                    f"pi_{i}_{pay}",
                    time=now + timedelta(minutes=minutes),
                    event_id=f"evt_{i}_{suffix}",
                )
                for i, c in enumerate(customers)
            ]
            await asyncio.gather(
                *(
                    producer.send(settings.topic_payments, v, key=str(c).encode())
                    for c, v in zip(customers, values, strict=True)
                )
            )
            sent.extend(decoder.decode(v, settings.topic_payments) for v in values)
    decided = decide_batch(Snapshot(), sent, policy=settings.policy)
    expected = {}
    for emitted in decided.emitted:
        assert isinstance(emitted.data, schemas.SessionCreated | schemas.SessionRejected)
        expected[emitted.data.payment_id] = str(emitted.id)
    assert len(expected) == 2 * CUSTOMERS
    return expected


async def _consume_until_crash(settings: Settings, handle: HandleBatch = handle_batch) -> None:
    """One instance's consumer loop, run until it crashes (no relay: the outbox stays)."""
    clients = Clients(settings)
    pool = await clients.pool(size=4)
    producer = clients.producer()
    await producer.start()
    consumer = clients.consumer()
    decide = build_decider(settings, pool, handle=handle)
    loop = ConsumerLoop(settings, consumer, producer, decide)
    loop.subscribe()
    await consumer.start()
    try:
        with pytest.raises(Crash):
            async with asyncio.timeout(30):
                await loop.run()
    finally:
        await consumer.stop()
        await producer.stop()
        await pool.close()


async def _restart_and_collect(settings: Settings) -> Outcomes:
    """A fresh instance on the same group and database, until all is committed and published."""
    async with Outcomes(settings) as outcomes, Offsets(settings) as offsets:
        async with running(settings):
            await wait_drained(settings)
        published = await offsets.count(settings.topic_sessions)
        await outcomes.wait_for(lambda o: len(o.records) >= published)
    return outcomes


def _assert_each_payment_decided_once(outcomes: Outcomes, expected: dict[str, str]) -> None:
    by_payment = outcomes_by_payment(outcomes.events)
    assert by_payment == {
        p: [schemas.SESSION_CREATED if p.endswith("_a") else schemas.SESSION_REJECTED]
        for p in expected
    }
    published = {
        e.data.payment_id: e.id
        for e in outcomes.events
        if isinstance(e.data, schemas.SessionCreated | schemas.SessionRejected)
    }
    assert published == expected


@pytest.mark.timeout(60)
async def test_a_crash_between_the_database_commit_and_the_offset_commit_decides_nothing_twice(
    make_settings: Any,
) -> None:
    settings = make_settings()
    expected = await _produce_stream(settings)

    async def decide_then_crash(store: Store, events: Any, **kw: Any) -> BatchResult:
        await handle_batch(store, events, **kw)
        raise Crash("after the database commit, before the offset commit")

    await _consume_until_crash(settings, decide_then_crash)

    decided = await fetchval(settings.dsn, "SELECT count(*) FROM payments")
    assert decided > 0
    async with Offsets(settings) as offsets:
        assert await offsets.committed() == {}

    outcomes = await _restart_and_collect(settings)
    _assert_each_payment_decided_once(outcomes, expected)
    assert len(outcomes.records) == 2 * CUSTOMERS
    assert await fetchval(settings.dsn, "SELECT count(*) FROM payments") == 2 * CUSTOMERS
    assert await fetchval(settings.dsn, "SELECT count(*) FROM processed_events") == 3 * CUSTOMERS


@pytest.mark.timeout(60)
async def test_a_crash_inside_the_database_transaction_is_redelivered_and_decided_once(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    expected = await _produce_stream(settings)
    write_result = PostgresStore.write_result

    async def write_then_crash(
        store: PostgresStore, result: BatchResult, rows: Sequence[OutboxRow]
    ) -> None:
        await write_result(store, result, rows)
        raise Crash("state and outbox written, transaction not committed")

    with monkeypatch.context() as patch:
        patch.setattr(PostgresStore, "write_result", write_then_crash)
        await _consume_until_crash(settings)

    for table in ("payments", "sessions", "processed_events", "outbox"):
        assert await fetchval(settings.dsn, f"SELECT count(*) FROM {table}") == 0, table
    async with Offsets(settings) as offsets:
        assert await offsets.committed() == {}

    outcomes = await _restart_and_collect(settings)
    _assert_each_payment_decided_once(outcomes, expected)
    assert len(outcomes.records) == 2 * CUSTOMERS


@pytest.mark.timeout(60)
async def test_a_crash_while_publishing_republishes_the_unconfirmed_rows_with_the_same_ids(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The restarted relay takes over from a crashed one: it waits out the produce timeout
    # (plus 2 s) before its first send, kept short here.
    settings = make_settings(relay_batch_size=5, kafka_produce_timeout_seconds=5)
    expected = await _produce_stream(settings)

    # Decided and committed by a consumer alone: the outbox holds all 12 outcomes.
    clients = Clients(settings)
    pool = await clients.pool(size=4)
    producer = clients.producer()
    await producer.start()
    try:
        consumer = clients.consumer()
        loop = ConsumerLoop(settings, consumer, producer, build_decider(settings, pool))
        loop.subscribe()
        await consumer.start()
        task = asyncio.create_task(loop.run())
        try:
            async with Offsets(settings) as offsets:

                async def all_committed() -> bool:
                    return await offsets.lag() == 0

                await wait_until(all_committed)
        finally:
            loop.stop()
            await task
            await consumer.stop()
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2 * CUSTOMERS

        # The relay deletes its first acknowledged rows, and dies deleting the next ones: what
        # it had published by then and not deleted is unconfirmed (its partitions' batches are
        # acknowledged, and deleted, each on its own, so how much that is varies).
        delete_outbox = outbox.delete_outbox
        deletes = 0

        async def delete_then_die(conn: postgres.Connection, seqs: Sequence[int]) -> None:
            nonlocal deletes
            deletes += 1
            if deletes == 2:
                raise Crash("sent, acknowledged, not yet deleted")
            await delete_outbox(conn, seqs)

        with monkeypatch.context() as patch:
            patch.setattr(outbox, "delete_outbox", delete_then_die)
            with pytest.raises(Crash):
                async with asyncio.timeout(30):
                    await Relay(settings, pool, producer).run()
        deleted = 2 * CUSTOMERS - await pool.fetchval("SELECT count(*) FROM outbox")
        async with Offsets(settings) as offsets:
            unconfirmed = await offsets.count(settings.topic_sessions) - deleted
        assert deleted > 0
        assert unconfirmed > 0
    finally:
        await producer.stop()
        await pool.close()

    outcomes = await _restart_and_collect(settings)
    assert len(outcomes.records) == 2 * CUSTOMERS + unconfirmed
    copies = Counter(e.id for e in outcomes.events)
    assert sorted(copies.values()) == [1] * (2 * CUSTOMERS - unconfirmed) + [2] * unconfirmed
    # A copy is the same message: same key, same bytes, same id.
    first: dict[str, tuple[bytes, bytes]] = {}
    for record, event in zip(outcomes.records, outcomes.events, strict=True):
        assert first.setdefault(event.id, (record.key, record.value)) == (record.key, record.value)
    assert {p: set(types) for p, types in outcomes_by_payment(outcomes.events).items()} == {
        p: {schemas.SESSION_CREATED if p.endswith("_a") else schemas.SESSION_REJECTED}
        for p in expected
    }
    assert {e.id for e in outcomes.events} == set(expected.values())
