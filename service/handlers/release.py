"""Releasing a customer's parked events: decided again, in their order, once the cause is fixed;
one that still fails stays parked, and with it every later event of that customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from service.core.batch import BatchResult
from service.core.parking import EventKey, ParkedEvent
from service.core.ports import Store
from service.core.sessions import Policy
from service.handlers.consume import handle_batch


async def release_parked(
    store: Store,
    parked: Sequence[ParkedEvent],
    *,
    policy: Policy,
    poison: Mapping[EventKey, str] | None = None,
    trial: bool = False,
    failpoint: frozenset[UUID] = frozenset(),
) -> BatchResult:
    """Decide `parked` (in `seq` order; for each customer in it, their earliest parked events)
    in one transaction. `poison` names those to keep parked; `trial` rolls everything back."""
    return await handle_batch(
        store,
        [p.event() for p in parked],
        policy=policy,
        poison=poison,
        trial=trial,
        releasing=parked,
        failpoint=failpoint,
    )
