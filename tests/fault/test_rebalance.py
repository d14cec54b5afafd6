"""Rebalances on the real stack: instances joining and leaving the group mid-stream hand their
partitions over without losing, repeating or reordering a decision."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, MutableMapping
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from structlog.testing import capture_logs

import schemas
from tests.fault.tools import (
    Offsets,
    fetchval,
    outcomes_by_payment,
    wait_drained,
    wait_until,
    wall_now,
)
from tests.harness import Outcomes, Producer, running
from tests.observability.service_http import address_of, get, until

pytestmark = pytest.mark.fault

CUSTOMERS = 40
NO_ASSIGNMENT = "no partition assignment from the group yet"  # what /readyz says meanwhile
ROUNDS = 8


@pytest.mark.timeout(90)
async def test_instances_joining_and_leaving_mid_stream_decide_every_payment_exactly_once(
    make_settings: Any,
) -> None:
    settings = make_settings(batch_size=20)
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    now = wall_now()
    # The stream goes on across both changes of the group, however long an instance takes to
    # start: a third of it waits for B to hold partitions, the last third for A to have left.
    joined, left = asyncio.Event(), asyncio.Event()

    async def stream(producer: Producer) -> None:
        # One payment per customer per round, rounds 0.4 s apart: the first payment of each
        # customer creates a session, every later one (within the TTL) is rejected.
        for r in range(ROUNDS):
            if r == ROUNDS // 3:
                await joined.wait()
            if r == 2 * ROUNDS // 3:
                await left.wait()
            await asyncio.gather(
                *(
                    producer.pay(c, f"pi_{i}_{r}", time=now + timedelta(minutes=r))
                    for i, c in enumerate(customers)
                )
            )
            await asyncio.sleep(0.4)

    with capture_logs() as logs:
        async with Outcomes(settings) as outcomes, Producer(settings) as producer:
            async with contextlib.AsyncExitStack() as b_stack:
                async with running(settings):  # instance A
                    producing = asyncio.create_task(stream(producer))
                    # A alone holds every partition, and decides.
                    await logged(logs, lambda e: e["event"] == "decided")
                    entered = len(logs)
                    b = await b_stack.enter_async_context(running(settings))  # instance B joins
                    # A hands partitions over (B's first revocation has none to name) ...
                    await logged(logs, revoked_some, start=entered)
                    # ... and B holds its share: its /readyz waits for its assignment.
                    address = await address_of(b)
                    await until(lambda: get(address, "/readyz"), assigned, 30)
                    joined.set()
                    await asyncio.sleep(1.2)
                # A has left mid-stream; B carries on alone.
                handed_over = len(logs)
                assert not producing.done()
                left.set()
                await producing
                await wait_drained(settings, within=45)
            async with Offsets(settings) as offsets:
                published = await offsets.count(settings.topic_sessions)
                assert await offsets.lag() == 0  # committed offsets reached the end
            await outcomes.wait_for(lambda o: len(o.records) >= published)

    events = outcomes.events
    total = CUSTOMERS * ROUNDS
    ids_per_payment: dict[str, set[str]] = {}
    for event in events:
        assert isinstance(event.data, schemas.SessionCreated | schemas.SessionRejected)
        ids_per_payment.setdefault(event.data.payment_id, set()).add(event.id)
    assert len(ids_per_payment) == total
    assert all(len(ids) == 1 for ids in ids_per_payment.values())
    # Per customer, in the order decided: created first, then one rejection per later round.
    for i, customer in enumerate(customers):
        mine = [
            schemas.decode_output(r.value)
            for r in outcomes.records
            if r.key == str(customer).encode()
        ]
        distinct = list(dict.fromkeys((e.type, getattr(e.data, "payment_id", None)) for e in mine))
        assert distinct == [(schemas.SESSION_CREATED, f"pi_{i}_0")] + [
            (schemas.SESSION_REJECTED, f"pi_{i}_{r}") for r in range(1, ROUNDS)
        ]
    assert await fetchval(settings.dsn, "SELECT count(*) FROM payments") == total

    # Both instances' consumers logged here: each payment decided once, no commit refused.
    assert any(revoked_some(e) for e in logs)
    decided = Counter(
        e["payment_id"]
        for e in logs
        if e["event"] == "decided" and e.get("outcome") in ("created", "rejected")
    )
    assert len(decided) == total
    # Really mid-stream: decisions both before A left and after.
    assert any(e["event"] == "decided" for e in logs[:handed_over])
    assert any(e["event"] == "decided" for e in logs[handed_over:])
    assert set(decided.values()) == {1}
    assert not [e for e in logs if e["event"] == "offset_commit_refused"]
    assert not [e for e in logs if "CommitFailedError" in repr(e)]


def assigned(answer: tuple[int, Any]) -> bool:
    """/readyz no longer names a consumer without an assignment (another problem, such as a
    dependency probe timing out under load, is not this test's)."""
    status, body = answer
    problems = body.get("problems", {}) if isinstance(body, dict) else {}
    return status == 200 or NO_ASSIGNMENT not in problems.values()


def revoked_some(entry: MutableMapping[str, Any]) -> bool:
    return entry["event"] == "partitions_revoked" and bool(entry.get("partitions"))


async def logged(
    logs: list[MutableMapping[str, Any]],
    found: Callable[[MutableMapping[str, Any]], bool],
    start: int = 0,
) -> None:
    """Until an entry from `start` on is `found`; TimeoutError after 30 s."""

    async def seen() -> bool:
        return any(found(e) for e in logs[start:])

    await wait_until(seen, within=30)


@pytest.mark.timeout(90)
async def test_the_group_rebalances_while_a_consumer_is_waiting_inside_getmany(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a rebalance has begun, aiokafka's getmany waits for the new assignment whatever its
    timeout, and the assignment waits for the revocation callback. Forcing every fetch of the
    group into that window makes the hand-over deterministic: nothing the callback needs may be
    held by a consumer loop while it fetches, or the group never settles."""
    settings = make_settings()
    real_getmany = AIOKafkaConsumer.getmany

    async def getmany_once_rebalancing(
        self: AIOKafkaConsumer, *partitions: TopicPartition, **kw: Any
    ) -> Any:
        if self._group_id == settings.group_id:
            # Enter only once a rebalance has begun (or after 2 s, to keep deciding meanwhile).
            # aiokafka offers no event for it, so poll its flag.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    while not self._subscription.reassignment_in_progress:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
        return await real_getmany(self, *partitions, **kw)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany_once_rebalancing)
    customers = [uuid.uuid4() for _ in range(12)]
    now = wall_now()
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running(settings),  # instance A
    ):
        await asyncio.gather(
            *(producer.pay(c, f"pi_{i}", time=now) for i, c in enumerate(customers))
        )
        await outcomes.wait_count(1, within=20)
        async with running(settings):  # instance B joins while A's loops sit in getmany
            later = now + timedelta(minutes=1)
            await asyncio.gather(
                *(producer.pay(c, f"pi_{i}_again", time=later) for i, c in enumerate(customers))
            )
            await wait_drained(settings, within=40)
            published = await fetchval(settings.dsn, "SELECT count(*) FROM payments")
            await outcomes.wait_for(lambda o: len(o.records) >= published)

    by_payment = {p: types for p, types in outcomes_by_payment(outcomes.events).items()}
    assert by_payment == {
        **{f"pi_{i}": [schemas.SESSION_CREATED] for i in range(len(customers))},
        **{f"pi_{i}_again": [schemas.SESSION_REJECTED] for i in range(len(customers))},
    }
