"""The one failure classification: what a failover, a full disk or a lack of connections raises
is an outage, retried for as long as it lasts and never a reason to park a customer; a refused
statement or a bug is not (the poison policy asks `is_outage`: tests/unit/handlers/)."""

from __future__ import annotations

import asyncpg
import pytest

import schemas
from service.adapters.failures import TRANSIENT, Failure, classify, is_outage

FAILOVER_CLASS = [
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03
    asyncpg.exceptions.DatabaseDroppedError,  # 57P04
    asyncpg.exceptions.IdleSessionTimeoutError,  # 57P05
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,  # 25P03
    asyncpg.exceptions.InsufficientResourcesError,  # 53000
    asyncpg.exceptions.DiskFullError,  # 53100
    asyncpg.exceptions.OutOfMemoryError,  # 53200
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
    asyncpg.exceptions.ConfigurationLimitExceededError,  # 53400
    asyncpg.exceptions.PostgresConnectionError,  # 08000
    asyncpg.exceptions.ConnectionDoesNotExistError,  # 08003
    asyncpg.exceptions.ConnectionFailureError,  # 08006
    asyncpg.exceptions.ClientCannotConnectError,  # 08001
    asyncpg.exceptions.PostgresSystemError,  # 58000
    asyncpg.exceptions.PostgresIOError,  # 58030
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    # A session ended while its pooled connection was idle (seen under pg_terminate_backend).
    asyncpg.exceptions.InternalClientError,
]

NOT_OUTAGES = [
    # statement_timeout may be the event's doing: parked after its retries, as documented.
    asyncpg.exceptions.QueryCanceledError,  # 57014
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.InvalidTextRepresentationError,
    asyncpg.exceptions.InternalServerError,
    ValueError,
]


@pytest.mark.parametrize("error", FAILOVER_CLASS, ids=lambda e: e.__name__)
def test_every_failover_class_error_is_an_outage(error: type[Exception]) -> None:
    assert isinstance(error("failing over"), TRANSIENT)
    assert is_outage(error("failing over"))


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: e.__name__)
def test_a_refused_statement_or_a_bug_is_not_an_outage(error: type[Exception]) -> None:
    assert not isinstance(error("wrong"), TRANSIENT)
    assert not is_outage(error("wrong"))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (schemas.DecodeError(schemas.DecodeErrorKind.NOT_JSON, "not JSON"), Failure.BAD_INPUT),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read-only"), Failure.OUTAGE),
        (ConnectionRefusedError(), Failure.OUTAGE),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), Failure.BUG),
        (ZeroDivisionError(), Failure.BUG),
    ],
)
def test_every_failure_is_one_of_three_kinds(error: BaseException, kind: Failure) -> None:
    assert classify(error) is kind
