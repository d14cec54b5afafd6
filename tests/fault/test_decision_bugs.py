"""A bug while deciding valid events (R8): loud, retried, never skipped or dead-lettered, and the
offset stays put while it is retried (after FULFILLMENT_POISON_RETRIES it is parked instead:
tests/fault/test_poison.py); and a batch backing off from such a bug when its partitions are
revoked is abandoned, so the group can move on, and decided exactly once by whoever owns it
next (R7)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

import schemas
from service.core.batch import BatchResult
from service.core.ports import Store
from service.handlers.consume import handle_batch
from tests.fault.tools import Offsets, outcomes_by_payment, wait_drained, wait_until, wall_now
from tests.harness import Outcomes, Producer, running

pytestmark = pytest.mark.fault


class Bug:
    """Stands in for `handle_batch`: raises while `broken`, else decides as the real one does."""

    def __init__(self) -> None:
        self.broken = True
        self.raised = 0

    async def __call__(
        self, store: Store, events: Sequence[schemas.InputEvent], **kw: Any
    ) -> BatchResult:
        if self.broken:
            self.raised += 1
            raise ZeroDivisionError("a bug in the decision code")
        return await handle_batch(store, events, **kw)


@pytest.mark.timeout(90)
async def test_a_bug_while_deciding_keeps_the_offset_and_the_event_is_decided_once_when_fixed(
    make_settings: Any,
) -> None:
    # Retried without end here: parking after the retries is tests/fault/test_poison.py's.
    settings = make_settings(retry_backoff_max_seconds=0.3, poison_retries=1000)
    bug = Bug()
    customer = uuid.uuid4()
    with capture_logs() as logs:
        async with (
            Outcomes(settings) as outcomes,
            Producer(settings) as producer,
            Offsets(settings) as offsets,
            running(settings, handle=bug),
        ):
            await producer.pay(customer, "pi_1", time=wall_now())

            async def failed_repeatedly() -> bool:
                return bug.raised >= 4

            await wait_until(failed_repeatedly)
            assert await offsets.lag() == 1  # not committed, so not skipped
            assert await offsets.count(settings.topic_dlq) == 0  # valid input is no dead letter
            assert not outcomes.records

            bug.broken = False  # the fix is deployed
            await wait_drained(settings)
            published = await offsets.count(settings.topic_sessions)
            await outcomes.wait_for(lambda o: len(o.records) >= published)

    assert outcomes_by_payment(outcomes.events) == {"pi_1": [schemas.SESSION_CREATED]}
    failures = [e for e in logs if e["event"] == "decide_failed"]
    assert len(failures) >= 4
    assert all(e["log_level"] == "error" for e in failures)
    assert all(isinstance(e["exc_info"], ZeroDivisionError) for e in failures)


@pytest.mark.timeout(120)
async def test_a_batch_backing_off_when_its_partitions_are_revoked_is_abandoned_then_decided_once(
    make_settings: Any,
) -> None:
    # A long cap: were the backoff not cut short by the revocation, the group would wait on it.
    settings = make_settings(retry_backoff_max_seconds=60, poison_retries=1000)
    bug = Bug()
    customers = [uuid.uuid4() for _ in range(24)]
    now = wall_now()
    with capture_logs() as logs:
        async with (
            Outcomes(settings) as outcomes,
            Producer(settings) as producer,
            Offsets(settings) as offsets,
            running(settings, handle=bug),  # instance A, which owns every partition at first
        ):
            await asyncio.gather(
                *(producer.pay(c, f"pi_{i}", time=now) for i, c in enumerate(customers))
            )

            async def failing() -> bool:
                return bug.raised >= 3

            await wait_until(failing)
            async with running(
                settings, handle=bug
            ):  # instance B joins: A's partitions are revoked

                async def abandoned() -> bool:
                    return any(e["event"] == "batch_abandoned" for e in logs)

                await wait_until(abandoned, within=30)
                assert await offsets.lag() == len(customers)  # A committed none of it
                bug.broken = False
                await wait_drained(settings, within=60)
                published = await offsets.count(settings.topic_sessions)
                await outcomes.wait_for(lambda o: len(o.records) >= published)

    assert outcomes_by_payment(outcomes.events) == {
        f"pi_{i}": [schemas.SESSION_CREATED] for i in range(len(customers))
    }
    assert not [e for e in logs if e["event"] == "offset_commit_refused"]
