"""A `DecideBatch` over the real handler on one store, as the wiring binds it, for the tests
of parking and of the poison search on the in-memory store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

import schemas
from service.core.batch import BatchResult
from service.core.parking import EventKey
from service.core.ports import DecideBatch, Store
from service.handlers.consume import handle_batch
from tests.unit.core.builders import POLICY


def decider(store: Store, failpoint: frozenset[UUID] = frozenset()) -> DecideBatch:
    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        return await handle_batch(
            store,
            events,
            policy=POLICY,
            traces=traces or {},
            poison=poison,
            trial=trial,
            failpoint=failpoint,
        )

    return decide
