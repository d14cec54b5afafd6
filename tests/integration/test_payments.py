"""R3 on the real stack: a payment becomes exactly one session.created or session.rejected."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import schemas
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.integration


def now() -> datetime:
    # Business times near the wall clock, so the sweeper (which uses it) leaves them alone.
    return datetime.now(UTC)


async def test_a_payment_creates_a_waiting_session_that_expires_after_the_ttl(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_1", time=now())
        [created] = await outcomes.wait_count(1)
    assert created.type == schemas.SESSION_CREATED
    assert isinstance(created.data, schemas.SessionCreated)
    assert created.data.customer_id == customer
    assert created.data.session_id == schemas.session_id_for_payment("pi_1")
    assert created.data.expires_at - created.data.created_at == timedelta(minutes=15)
    assert outcomes.records[0].key == str(customer).encode()


async def test_a_second_payment_while_a_session_waits_is_rejected_with_the_active_session(
    make_settings: Any,
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        start = now()
        await producer.pay(customer, "pi_1", time=start)
        await producer.pay(customer, "pi_2", time=start + timedelta(minutes=1))
        first, second = await outcomes.wait_count(2)
    assert first.type == schemas.SESSION_CREATED
    assert second.type == schemas.SESSION_REJECTED
    assert isinstance(second.data, schemas.SessionRejected)
    assert second.data.active_session_id == schemas.session_id_for_payment("pi_1")
    assert second.data.payment_id == "pi_2"
