"""Capped exponential backoff with full jitter, for every loop that must outlast an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from tenacity import AsyncRetrying, RetryCallState, stop_never, wait_random_exponential

log = structlog.get_logger("service.retry")

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # e.g. "database is not currently accepting connections" while it is being restarted
    asyncpg.ObjectNotInPrerequisiteStateError,
    # Retrying is the remedy PostgreSQL prescribes for these.
    asyncpg.DeadlockDetectedError,
    # lock_timeout: a peer holds a customer's lock too long (a frozen instance, whose session
    # the server ends after idle_in_transaction_session_timeout). Not the event's fault.
    asyncpg.LockNotAvailableError,
    asyncpg.SerializationError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
)


def retrying(
    what: str,
    *,
    cap: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: Any = stop_never,
) -> AsyncRetrying:
    return AsyncRetrying(
        wait=wait_random_exponential(multiplier=0.1, max=cap),
        sleep=sleep,
        stop=stop,
        before_sleep=lambda state: _log(what, state),
        reraise=True,
    )


def _log(what: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = round(state.next_action.sleep if state.next_action else 0.0, 3)
    if isinstance(error, TRANSIENT):
        log.warning(f"{what}_retry", attempt=state.attempt_number, delay=delay, error=repr(error))
    else:
        # A bug, or a statement the database refused, while handling valid input: loud, and
        # retried rather than skipped, so nothing is lost while someone looks.
        log.error(f"{what}_failed", attempt=state.attempt_number, delay=delay, exc_info=error)
