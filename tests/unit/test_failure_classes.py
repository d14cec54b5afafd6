"""The one failure classification: what a failover, a full disk or a lack of connections raises
is an outage, retried for as long as it lasts and never a reason to park a customer; a refused
statement or a bug is not."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import asyncpg
import pytest

import schemas
from service.adapters.failures import TRANSIENT, Failure, classify
from service.adapters.poison import PoisonGuard
from service.core.batch import BatchResult
from service.core.parking import EventKey
from tests.unit.core.builders import ALICE, BOB, payment

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


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: e.__name__)
def test_a_refused_statement_or_a_bug_is_not_an_outage(error: type[Exception]) -> None:
    assert not isinstance(error("wrong"), TRANSIENT)


@pytest.mark.parametrize("error", FAILOVER_CLASS, ids=lambda e: e.__name__)
def test_a_batch_failing_with_an_outage_is_retried_past_the_poison_retries_and_parks_nobody(
    error: type[Exception],
) -> None:
    calls: list[Mapping[EventKey, str] | None] = []

    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        calls.append(poison)
        raise error("failing over")

    async def attempts() -> None:
        guard = PoisonGuard(decide, retries=2)
        for _ in range(20):
            with pytest.raises(error):
                await guard([payment("pi_1", ALICE), payment("pi_2", BOB)])
        assert guard.poison == {}

    asyncio.run(attempts())
    assert len(calls) == 20
    assert all(not poison for poison in calls)


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
