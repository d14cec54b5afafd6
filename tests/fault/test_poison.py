"""Poison containment end to end (real Kafka and PostgreSQL): the failpoint makes deciding one
customer's events raise; after FULFILLMENT_POISON_RETRIES that customer is parked with their
later events, in order, while every other customer's events on the same partition flow; once
the failpoint is gone, `parked release` decides them once and in order."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

import schemas
from service.entrypoints import output
from service.entrypoints.parked import parked_command
from service.observe.metrics import REGISTRY
from tests.fault.tools import Offsets, fetchval, outcomes_by_payment, wait_drained, wall_now
from tests.harness import Outcomes, Producer, payment, running

pytestmark = pytest.mark.fault


async def parked_ids(dsn: str) -> list[str]:
    rows = await fetchval(dsn, "SELECT array_agg(event_id ORDER BY seq) FROM parked_events")
    return list(rows or [])


@pytest.mark.timeout(120)
async def test_a_failing_customer_is_parked_with_later_events_others_flow_and_release_decides_once(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob, carol, dave, erin = (uuid.uuid4() for _ in range(5))
    broken = make_settings(
        failpoint_customers=frozenset({alice}), poison_retries=1, retry_backoff_max_seconds=0.2
    )
    fixed = make_settings()
    now = wall_now()
    with capture_logs() as logs:
        async with (
            Outcomes(broken) as outcomes,
            Producer(broken) as producer,
            Offsets(broken) as offsets,
            running(broken),
        ):
            # One partition: without containment alice's failure would hold up all of them.
            for customer, payment_id in [
                (bob, "bob-1"),
                (alice, "alice-1"),
                (carol, "carol-1"),
                (alice, "alice-2"),
                (dave, "dave-1"),
            ]:
                await producer.pay(customer, payment_id, time=now, event_id=payment_id, partition=0)
            await outcomes.wait_for(
                lambda o: {"bob-1", "carol-1", "dave-1"} <= set(outcomes_by_payment(o.events)),
                within=20,
            )
            # A later batch: alice is parked already, so her event joins the others unasked.
            await producer.pay(alice, "alice-3", time=now, event_id="alice-3", partition=0)
            await producer.pay(erin, "erin-1", time=now, event_id="erin-1", partition=0)
            await outcomes.wait_for(lambda o: "erin-1" in outcomes_by_payment(o.events))
            await wait_drained(broken)
            assert await offsets.count(broken.topic_dlq) == 0
        assert await parked_ids(broken.dsn) == ["alice-1", "alice-2", "alice-3"]
        assert not {"alice-1", "alice-2", "alice-3"} & set(outcomes_by_payment(outcomes.events))
        assert REGISTRY.get_sample_value("fulfillment_parked_customers") == 1
        assert REGISTRY.get_sample_value("fulfillment_parked_events") == 3
        assert any(e["event"] == "poison_parked" for e in logs)

        capsys.readouterr()
        assert await parked_command(broken, "list", as_json=True) == output.OK
        (listed,) = json.loads(capsys.readouterr().out)
        assert listed["customer_id"] == str(alice) and listed["events"] == 3
        assert "FailpointHit" in listed["reason"]

        # Released while the failpoint is still there: still failing, so all stay parked.
        assert await parked_command(broken, "release", customer=alice) == output.PARTLY
        assert await parked_ids(broken.dsn) == ["alice-1", "alice-2", "alice-3"]
        # A dry run of the fixed release says what would happen and changes nothing.
        capsys.readouterr()
        assert (
            await parked_command(fixed, "release", customer=alice, dry_run=True, as_json=True)
            == output.OK
        )
        dry = json.loads(capsys.readouterr().out)
        assert [d["event_id"] for d in dry["released"][0]["decided"]] == [
            "alice-1",
            "alice-2",
            "alice-3",
        ]
        assert await parked_ids(broken.dsn) == ["alice-1", "alice-2", "alice-3"]

        assert await parked_command(fixed, "release", customer=alice) == output.OK
        assert await parked_ids(broken.dsn) == []
        assert await parked_command(fixed, "release", customer=alice) == output.NOT_FOUND

        async with Outcomes(fixed) as after, Offsets(fixed) as published, running(fixed):
            # The relay of the running service publishes what the release put in the outbox.
            await after.wait_for(lambda o: "alice-3" in outcomes_by_payment(o.events))
            await wait_drained(fixed)
            total = await published.count(fixed.topic_sessions)
            await after.wait_for(lambda o: len(o.records) >= total)

    mine = [e for e in after.events if getattr(e.data, "customer_id", None) == alice]
    assert [(e.type, e.data.payment_id) for e in mine] == [  # type: ignore[union-attr]
        (schemas.SESSION_CREATED, "alice-1"),
        (schemas.SESSION_REJECTED, "alice-2"),
        (schemas.SESSION_REJECTED, "alice-3"),
    ]
    assert all(len(v) == 1 for v in outcomes_by_payment(after.events).values())


@pytest.mark.timeout(120)
async def test_inputs_that_decode_but_fail_later_stop_nobody_else_on_their_partition(
    make_settings: Any,
) -> None:
    """Each is contained wherever it is caught: refused at decode (on the DLQ once, with its
    reason) where the decoder knows the limit, else parked with its customer after the retries.
    Either way the good payments around it on the same partition get their outcomes."""
    settings = make_settings(poison_retries=1, retry_backoff_max_seconds=0.2)
    now = wall_now()
    good = {f"good-{i}": uuid.uuid4() for i in range(3)}
    overflowing = orjson.loads(payment(uuid.uuid4(), "overflow", time=now))
    # Valid as RFC 3339, but 0001-01-01T00:10+01:00 is before year 1 in UTC.
    overflowing["time"] = "0001-01-01T00:10:00+01:00"
    overflowing["id"] = "overflow"
    # 1,024 characters, 4,096 bytes that do not compress: over PostgreSQL's B-tree limit for
    # the dedupe key (a repetitive id would be compressed under it).
    huge_id = orjson.loads(payment(uuid.uuid4(), "huge-id", time=now))
    chars = random.Random(12).choices(range(0x20000, 0x2A6DF), k=1024)
    huge_id["id"] = "".join(map(chr, chars))
    bad = {"overflow": orjson.dumps(overflowing), "huge-id": orjson.dumps(huge_id)}
    stream = [
        ("good-0", None),
        ("overflow", bad["overflow"]),
        ("good-1", None),
        ("huge-id", bad["huge-id"]),
        ("good-2", None),
    ]
    async with (
        Outcomes(settings) as outcomes,
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Producer(settings) as producer,
        running(settings),
    ):
        started = asyncio.get_running_loop().time()
        for name, value in stream:
            if value is None:
                await producer.pay(good[name], name, time=now, event_id=name, partition=0)
            else:
                await producer.send(settings.topic_payments, value, partition=0)
        await outcomes.wait_for(
            lambda o: set(good) <= set(outcomes_by_payment(o.events)), within=30
        )
        flowed_in = asyncio.get_running_loop().time() - started
        await wait_drained(settings)
        parked = await fetchval(
            settings.dsn, "SELECT array_agg(type || ':' || left(event_id, 20)) FROM parked_events"
        )
    assert flowed_in < 20
    assert outcomes_by_payment(outcomes.events) == {g: [schemas.SESSION_CREATED] for g in good}
    dead = [dict(r.headers) for r in dlq.records]
    parked_count = len(parked or [])
    assert parked_count + len(dead) == len(bad)  # each once, in one place or the other
    assert all(h[schemas.DLQ_ERROR_REASON] for h in dead)
