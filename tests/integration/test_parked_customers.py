"""A parked customer on the real stack: the sweeper and `purge-stale` leave them alone until an
operator releases them, and the release decides each parked event at its own time."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from structlog.testing import capture_logs

import schemas
from service.adapters import postgres
from service.config.settings import Settings
from service.entrypoints import output
from service.entrypoints.parked import parked_command
from service.entrypoints.purge_stale import purge_stale
from service.handlers.consume import handle_batch
from tests.fault.tools import wait_drained, wall_now
from tests.harness import Outcomes, running
from tests.unit.core.builders import acceptance, minutes, payment, session_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def outbox_types(pool: postgres.Pool, customer: UUID) -> list[str]:
    values = await pool.fetch(
        "SELECT value FROM outbox WHERE key = $1 ORDER BY seq", str(customer).encode()
    )
    return [schemas.decode_output(r["value"]).type for r in values]


def of(events: list[schemas.OutputEvent], customer: UUID) -> list[str]:
    return [e.type for e in events if getattr(e.data, "customer_id", None) == customer]


async def release(settings: Settings, customer: UUID, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    with capture_logs():
        code = await parked_command(settings, "release", customer=customer, as_json=True)
    assert code == output.OK
    (released,) = json.loads(capsys.readouterr().out)["released"]
    return released


async def test_an_in_time_acceptance_parked_behind_poison_is_accepted_on_a_release_after_expiry(
    make_settings: Any, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    parked_customer, other = uuid4(), uuid4()
    # Twenty minutes ago: both waits expired five minutes ago by the wall clock, which is
    # what the sweeper and `purge-stale` go by.
    paid_at = wall_now() - minutes(20)
    poison = payment("pi-poison", parked_customer, at=paid_at + timedelta(seconds=30))
    in_time = acceptance(session_of("pi-parked"), at=paid_at + minutes(1))
    async with postgres.store_of(pool) as store:
        await handle_batch(
            store,
            [
                payment("pi-parked", parked_customer, at=paid_at),
                payment("pi-other", other, at=paid_at),
            ],
            policy=settings.policy,
        )
        # What the consumer's containment commits: the poison event parked, and behind it the
        # customer's later acceptance, made well inside the TTL.
        result = await handle_batch(
            store,
            [poison, in_time],
            policy=settings.policy,
            poison={(poison.source, poison.id): "boom"},
        )
    assert [p.event_id for p in result.parked] == [poison.id, in_time.id]

    async with Outcomes(settings) as outcomes:
        async with running(settings):
            # The running service's sweeper closes the other customer's expired wait ...
            await outcomes.wait_for(
                lambda o: schemas.SESSION_CANCELLED in of(o.events, other), within=20
            )
            # ... and purge-stale, run by hand, finds nothing else due.
            capsys.readouterr()
            with capture_logs():
                assert await purge_stale(settings, as_json=True) == output.OK
            assert json.loads(capsys.readouterr().out)["closed"] == []
            await wait_drained(settings)
        assert of(outcomes.events, parked_customer) == [schemas.SESSION_CREATED]
        assert await outbox_types(pool, parked_customer) == []

        released = await release(settings, parked_customer, capsys)
        assert [(d["event_id"], d["outcome"]) for d in released["decided"]] == [
            (poison.id, "rejected"),
            (in_time.id, "accepted"),
        ]
        async with running(settings):
            await outcomes.wait_for(
                lambda o: schemas.SESSION_ACCEPTED in of(o.events, parked_customer)
            )
            await wait_drained(settings)
    assert of(outcomes.events, parked_customer) == [
        schemas.SESSION_CREATED,
        schemas.SESSION_REJECTED,
        schemas.SESSION_ACCEPTED,
    ]
    status = await pool.fetchval(
        "SELECT status FROM sessions WHERE id = $1", session_of("pi-parked")
    )
    assert status == "live"


async def test_a_payment_released_after_its_ttl_gets_its_session_and_its_expiry_in_the_release(
    make_settings: Any, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    customer = uuid4()
    late = payment("pi-late", customer, at=wall_now() - minutes(20))
    async with postgres.store_of(pool) as store:
        await handle_batch(
            store, [late], policy=settings.policy, poison={(late.source, late.id): "boom"}
        )

    released = await release(settings, customer, capsys)

    assert [d["outcome"] for d in released["decided"]] == ["created", "cancelled:expired"]
    # As of the payment's own time, as a replay of the topic would decide it: created, and
    # cancelled at its expires_at, both in the release's outbox rows, in that order.
    assert await outbox_types(pool, customer) == [
        schemas.SESSION_CREATED,
        schemas.SESSION_CANCELLED,
    ]
    row = await pool.fetchrow(
        "SELECT status, created_at, closed_at FROM sessions WHERE id = $1", session_of("pi-late")
    )
    assert row is not None and row["status"] == "cancelled"
    assert row["created_at"] == late.time
    assert row["closed_at"] == late.time + settings.request_ttl
