"""`retried`, the retry loop a consumer runs around every batch: a batch that succeeds at once
leaves no reference cycle for the cyclic collector (tenacity's state is one, and per batch it
filled the young generation with garbage: the soak's RSS warm-up), and a failing one is retried,
counted and backed off as `retrying` always did."""

from __future__ import annotations

import asyncio
import gc

import pytest

from service.adapters.retry import retried
from service.observe.health import Health
from service.observe.metrics import REGISTRY

CALLS = 200


def retries_counted(loop: str, kind: str) -> float:
    value = REGISTRY.get_sample_value("fulfillment_retries_total", {"loop": loop, "kind": kind})
    return value or 0.0


async def decided() -> int:
    return 1


async def cyclic_garbage_of_successes() -> int:
    """Objects the cyclic collector finds after CALLS successful calls, and only those."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(CALLS):
            assert await retried("decide", decided, cap=1.0) == 1
        return gc.collect()
    finally:
        gc.enable()


def test_a_call_that_succeeds_at_once_leaves_no_garbage_for_the_cyclic_collector() -> None:
    assert asyncio.run(cyclic_garbage_of_successes()) == 0


def test_a_failing_call_is_retried_counted_and_backed_off_until_it_succeeds() -> None:
    attempts: list[int] = []
    slept: list[float] = []
    health = Health()

    async def flaky() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("database down")
        return "decided"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    before = retries_counted("decide", "transient")
    result = asyncio.run(
        retried("decide", flaky, cap=0.5, sleep=sleep, health=health, health_key="c decide")
    )
    assert result == "decided"
    assert attempts == [1, 2, 3]
    assert len(slept) == 2 and all(0 <= s <= 0.5 for s in slept)
    assert retries_counted("decide", "transient") == before + 2
    assert "c decide loop" in health.problems()  # reported; the caller reports recovery


def test_a_cancellation_is_not_retried() -> None:
    attempts: list[int] = []

    async def cancelled() -> None:
        attempts.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(retried("decide", cancelled, cap=1.0))
    assert attempts == [1]
