"""`fulfillment parked release --all` always finishes with a summary and its exit code, run as
the operator runs it (a subprocess) on the real PostgreSQL, whatever the poison search does:
more failing events than one search finds, and events held behind a customer who stays parked.

The parked events are written with the store itself, as the consumer would have parked them;
the failpoint (FULFILLMENT_FAILPOINT_CUSTOMERS) makes deciding a customer's events fail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.config.settings import Settings
from service.core.parking import ParkedEvent
from service.core.ports import Store
from service.handlers.consume import handle_batch
from service.handlers.poison import MAX_NEW_POISON
from tests.commands import Finished, fulfillment
from tests.fault.tools import fetchval, wall_now
from tests.harness import acceptance, payment
from tests.settings_env import environment_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FAILING = 20  # more than one poison search finds (MAX_NEW_POISON)


@asynccontextmanager
async def store_on(settings: Settings) -> AsyncIterator[Store]:
    pool = await postgres.create_pool(settings.dsn, size=1)
    try:
        async with postgres.store_of(pool) as store:
            yield store
    finally:
        await pool.close()


def decoded(raw: bytes) -> schemas.InputEvent:
    type_ = json.loads(raw)["type"]
    event: schemas.InputEvent = schemas.INPUT_EVENT_CLASSES[type_].model_validate_json(raw)
    return event


def parked(event: schemas.InputEvent, customer: uuid.UUID | None, reason: str) -> ParkedEvent:
    return ParkedEvent(
        customer_id=customer,
        source=event.source,
        event_id=event.id,
        type=event.type,
        body=event.model_dump_json(by_alias=True, exclude_none=True).encode(),
        reason=reason,
    )


async def with_sessions(
    store: Store, settings: Settings, customers: Sequence[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    """A session for each customer (decided as the consumer decides); their ids."""
    payments = [decoded(payment(c, f"pay-{c}", time=now)) for c in customers]
    await handle_batch(store, payments, policy=settings.policy)
    return [schemas.session_id_for_payment(f"pay-{c}") for c in customers]


async def release_all(settings: Settings, *flags: str) -> Finished:
    # A release that never ends fails here, by the timeout, instead of hanging the suite.
    return await fulfillment(
        "parked", "release", "--all", *flags, env=environment_of(settings), within=90
    )


async def parked_count(settings: Settings) -> int:
    return int(await fetchval(settings.dsn, "SELECT count(*) FROM parked_events"))


async def test_release_of_more_failing_events_without_a_customer_than_one_search_finds_ends_with_exit_4_and_a_summary(  # noqa: E501
    make_settings: Any,
) -> None:
    assert FAILING > MAX_NEW_POISON
    owners = [uuid.uuid4() for _ in range(FAILING)]
    dave = uuid.uuid4()
    settings = make_settings()
    now = wall_now()
    async with store_on(settings) as store:
        sessions = await with_sessions(store, settings, owners, now)
        # Parked when their sessions were unknown: no customer. Their owners now fail.
        await store.park(
            [
                parked(decoded(acceptance(s, uuid.uuid4(), time=now)), None, "FailpointHit")
                for s in sessions
            ]
        )
        # A customer parked after them, whose payment now decides.
        await store.park([parked(decoded(payment(dave, "dave-1", time=now)), dave, "bug")])
    broken = make_settings(failpoint_customers=frozenset(owners))

    dry = await release_all(broken, "--dry-run")

    assert dry.returncode == 4, dry.output[-3000:]
    assert f"events without a customer: would decide 0, still parked {FAILING}" in dry.stdout
    assert await parked_count(settings) == FAILING + 1

    finished = await release_all(broken)

    assert "Traceback" not in finished.output, finished.output[-3000:]
    assert finished.returncode == 4, finished.output[-3000:]
    assert f"events without a customer: decided 0, still parked {FAILING}" in finished.stdout
    assert f"{dave}: decided 1, still parked 0" in finished.stdout
    assert await parked_count(settings) == FAILING

    as_json = await release_all(broken, "--json")

    assert as_json.returncode == 4, as_json.output[-3000:]
    (group,) = json.loads(as_json.stdout)["released"]
    assert group["customer_id"] is None and len(group["still_parked"]) == FAILING
    assert all("FailpointHit" in row["reason"] for row in group["still_parked"])


async def test_release_of_an_event_without_a_customer_whose_session_belongs_to_a_parked_customer_ends(  # noqa: E501
    make_settings: Any,
) -> None:
    carol = uuid.uuid4()
    settings = make_settings()
    now = wall_now()
    async with store_on(settings) as store:
        (session,) = await with_sessions(store, settings, [carol], now)
        # Carol parked behind a later payment; an acceptance of her session parked before her
        # session was known, so without a customer.
        later = decoded(payment(carol, "carol-later", time=now, event_id="carol-later"))
        await store.park([parked(later, carol, "FailpointHit")])
        accepted = decoded(acceptance(session, uuid.uuid4(), time=now, event_id="carol-accepted"))
        await store.park([parked(accepted, None, "FailpointHit")])

    still_failing = await release_all(make_settings(failpoint_customers=frozenset({carol})))

    assert "Traceback" not in still_failing.output, still_failing.output[-3000:]
    assert still_failing.returncode == 4, still_failing.output[-3000:]
    assert f"{carol}: decided 0, still parked 1" in still_failing.stdout
    assert "events without a customer: decided 0, still parked 1" in still_failing.stdout
    assert await parked_count(settings) == 2

    # Fixed: carol is released first, then the acceptance of her session is decided after her.
    fixed = await release_all(settings, "--json")

    assert fixed.returncode == 0, fixed.output[-3000:]
    decided = [d["event_id"] for r in json.loads(fixed.stdout)["released"] for d in r["decided"]]
    assert decided == ["carol-later", "carol-accepted"]
    assert await parked_count(settings) == 0


async def test_release_of_events_that_no_longer_decode_keeps_them_parked_and_ends_with_exit_4(
    make_settings: Any,
) -> None:
    erin = uuid.uuid4()
    settings = make_settings()
    now = wall_now()
    garbled = parked(decoded(acceptance(uuid.uuid4(), uuid.uuid4(), time=now)), None, "bug")
    async with store_on(settings) as store:
        await store.park(
            [
                parked(decoded(payment(erin, "erin-1", time=now, event_id="erin-1")), erin, "bug"),
                replace(garbled, customer_id=erin, event_id="erin-garbled", body=b"{}"),
                parked(decoded(payment(erin, "erin-2", time=now, event_id="erin-2")), erin, "bug"),
                replace(garbled, event_id="nobody-garbled", body=b'{"data": 1}'),
            ]
        )

    finished = await release_all(settings, "--json")

    assert "Traceback" not in finished.output, finished.output[-3000:]
    assert finished.returncode == 4, finished.output[-3000:]
    erins, nobodys = json.loads(finished.stdout)["released"]
    assert [d["event_id"] for d in erins["decided"]] == ["erin-1"]
    assert [p["event_id"] for p in erins["still_parked"]] == ["erin-garbled", "erin-2"]
    assert erins["still_parked"][0]["reason"].startswith("no longer decodes: ")
    assert [p["event_id"] for p in nobodys["still_parked"]] == ["nobody-garbled"]
    assert await parked_count(settings) == 3
