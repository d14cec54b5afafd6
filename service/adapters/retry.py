"""Capped exponential backoff with full jitter, for every loop that must outlast an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from tenacity import AsyncRetrying, RetryCallState, stop_never, wait_random_exponential

from service.adapters import metrics
from service.adapters.health import Health

log = structlog.get_logger("service.retry")

# What says the server this pool talks to is no longer a primary that takes writes: its
# connections are dropped (postgres.pool.connection), and new ones find the primary again
# (a multi-host URL with target_session_attrs=read-write).
FAILOVER: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: demoted, or a standby
    asyncpg.exceptions.AdminShutdownError,  # 57P01: stopped, or its sessions ended
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting, or in recovery
    asyncpg.exceptions.TargetServerAttributeNotMatched,  # no host is the primary (yet)
)

# The one failure classification: what is an outage (retried with backoff until it passes,
# never a reason to park a customer) rather than a bug or a refused statement. A failover raises
# most of these: the old primary's sessions are ended, it may go on answering read-only, the new
# one refuses connections while it starts.
TRANSIENT: tuple[type[BaseException], ...] = (
    *FAILOVER,
    OSError,
    TimeoutError,
    # Class 08: the connection failed or was lost.
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # Class 57: the server or an operator ended the session. 57P01 admin shutdown (a stopped
    # or failing-over server, pg_terminate_backend), 57P02 crash shutdown, 57P03 cannot connect
    # now (starting, in recovery): in FAILOVER above; 57P04 database dropped, 57P05 idle session
    # timeout. Not 57014 (a statement cancelled): statement_timeout may be the event's doing, so
    # it is parked after its retries (README, "When an event cannot be decided").
    asyncpg.exceptions.DatabaseDroppedError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    # Class 53: the server lacks disk, memory or connections, whatever the event.
    asyncpg.exceptions.InsufficientResourcesError,
    # Class 58: an I/O error of the server, outside PostgreSQL.
    asyncpg.exceptions.PostgresSystemError,
    # 25P03: the server ended this session, idle in a transaction (a frozen instance).
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
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


def count_retry(loop: str, error: BaseException | None) -> None:
    kind = "transient" if isinstance(error, TRANSIENT) else "bug"
    metrics.retries.labels(loop=loop, kind=kind).inc()


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
