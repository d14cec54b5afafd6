"""Capped exponential backoff with full jitter, for every loop that must outlast an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, stop_never, wait_random_exponential

from service.adapters.failures import TRANSIENT, Failure, classify
from service.observe import metrics
from service.observe.health import Health

log = structlog.get_logger("service.retry")

T = TypeVar("T")


def retrying(
    what: str,
    *,
    cap: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: Any = stop_never,
    health: Health | None = None,
    health_key: str | None = None,
) -> AsyncRetrying:
    """Retries `what`, counting each retry and, with `health`, reporting the loop (`health_key`,
    default `what`) as backing off; the caller reports `health.recovered(key)` once an attempt
    succeeds."""
    return AsyncRetrying(
        wait=wait_random_exponential(multiplier=0.1, max=cap),
        sleep=sleep,
        stop=stop,
        before_sleep=lambda state: _before_sleep(what, state, health, health_key or what),
        reraise=True,
    )


async def retried(
    what: str,
    action: Callable[[], Awaitable[T]],
    *,
    cap: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    health: Health | None = None,
    health_key: str | None = None,
) -> T:
    """`action` until it succeeds, retried as `retrying` says, for a loop that calls it per batch.

    The first attempt runs before any `AsyncRetrying` exists: tenacity's state is a web of
    reference cycles (the retrying object and its call state name each other, its actions are
    its own bound methods), which reference counting never frees. Made per batch, they filled
    the cyclic collector's young generation (50,000 objects, service.py) with garbage: 10 to
    13 MiB a process between collections, whose high-water mark the interpreter's arenas kept
    (bench/README.md, RSS over a soak at 1,000/s). A first failure is handed to tenacity as its
    first attempt, so it is counted, logged and backed off exactly as before."""
    try:
        return await action()
    except Exception as error:
        first: Exception | None = error
    async for attempt in retrying(what, cap=cap, sleep=sleep, health=health, health_key=health_key):
        with attempt:
            if first is not None:
                failed, first = first, None
                raise failed
            return await action()
    raise AssertionError("unreachable")


def count_retry(loop: str, error: BaseException | None) -> None:
    outage = error is not None and classify(error) is Failure.OUTAGE
    kind = metrics.RetryKind.TRANSIENT if outage else metrics.RetryKind.BUG
    metrics.retries.labels(loop=loop, kind=kind.value).inc()


def _before_sleep(what: str, state: RetryCallState, health: Health | None, key: str) -> None:
    error = state.outcome.exception() if state.outcome else None
    count_retry(what, error)
    if health is not None:
        health.backing_off(key, error)
    _log(what, state, error)


def _log(what: str, state: RetryCallState, error: BaseException | None) -> None:
    delay = round(state.next_action.sleep if state.next_action else 0.0, 3)
    if isinstance(error, TRANSIENT):
        log.warning(f"{what}_retry", attempt=state.attempt_number, delay=delay, error=repr(error))
    else:
        # A bug, or a statement the database refused, while handling valid input: loud, and
        # retried rather than skipped, so nothing is lost while someone looks.
        log.error(f"{what}_failed", attempt=state.attempt_number, delay=delay, exc_info=error)
