"""The three kinds of failure, named in one place, and which kind an exception is.

- bad input: the event itself cannot be read or validated (`schemas.DecodeError`); it goes to
  the dead-letter topic with its reason, and nothing else waits for it;
- outage: a dependency is away or failing over (`TRANSIENT`); the loop retries with backoff
  until it passes, and it is never a reason to park a customer;
- bug: anything else while deciding valid input (a defect, or a statement the database
  refused); retried a few times, then the event is parked behind its customer (the poison
  policy, service/handlers/poison.py, which the wiring hands `is_outage`) so that no other
  customer waits.

The consumer, the relay, the sweeper and the operator commands all ask this module.
"""

from __future__ import annotations

from enum import StrEnum

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError

import schemas


class Failure(StrEnum):
    BAD_INPUT = "bad_input"
    OUTAGE = "outage"
    BUG = "bug"


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
    # A pooled connection whose session the server ended while it was idle can be left in a
    # protocol state asyncpg cannot leave ("cannot switch to state 12; another operation (2) is
    # in progress", MagicStack/asyncpg#1069): the connection's fault, never the event's.
    asyncpg.exceptions.InternalClientError,
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


def classify(error: BaseException) -> Failure:
    """Which of the three kinds `error` is."""
    if isinstance(error, schemas.DecodeError):
        return Failure.BAD_INPUT
    if isinstance(error, TRANSIENT):
        return Failure.OUTAGE
    return Failure.BUG


def is_outage(error: BaseException) -> bool:
    """Retried until it passes, never a reason to park a customer."""
    return classify(error) is Failure.OUTAGE
