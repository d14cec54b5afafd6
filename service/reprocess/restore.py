"""A restore: the database rebuilt from `sessions.events` alone, for when the inputs have
expired from their topics. Sessions, payments' outcomes, customers and the decided inputs'
dedupe records come from the outputs that announced them, written through the `Store` port in
chunks.

Not restored: the dedupe records of inputs that caused no output (duplicates, ignored ends),
which no output names; and the outbox (what was published is published).

Parked events were never published: the changelog cannot bring them back. They are copied, in
their order and with their reasons, from the database being replaced when it can still be read.
When it cannot, what the input topics still hold that was consumed without any output
(`without_outcome.py`) is brought back parked instead.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from itertools import islice
from typing import Any

from service.adapters import postgres
from service.bootstrap.factory import Clients
from service.bootstrap.service import tune_garbage_collector
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.ports import Store
from service.reprocess.history import (
    LiveParked,
    MissingTopic,
    read_changelog,
    read_inputs,
    read_live_parked,
)
from service.reprocess.rebuild import Progress
from service.reprocess.restore_state import Restored, restore_state
from service.reprocess.without_outcome import WithoutOutcome, without_outcome

CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Restoration:
    state: Restored
    parked: LiveParked  # brought back parked: from the database being replaced, or the inputs
    unpublished: WithoutOutcome | None  # read from the inputs, when the parked were unknown


async def restore(
    settings: Settings, clients: Clients, pool: postgres.Pool, progress: Progress
) -> Restoration:
    """Into the empty database of `pool` (`clients` aimed at it); `settings` name the database
    being replaced. Raises what reading the changelog raises (`history.MissingTopic`,
    `changelog.UnreadableOutput`, `restore_state.Inconsistent`, aiokafka's KafkaError) and
    asyncpg's errors."""
    # As the rebuild: the live service's collector settings, and what is read whole and kept
    # to the end frozen out of the collections.
    tune_garbage_collector()
    state = restore_state(await read_changelog(clients))
    gc.freeze()
    parked = await read_live_parked(settings)
    unpublished = await _from_inputs(clients, state) if parked.unknown else None
    if unpublished is not None:
        parked = LiveParked(unpublished.events, parked.unknown)
    progress.total = len(state.sessions) + len(state.payments) + len(state.claims)
    async with postgres.store_of(pool) as store:
        await write(store, state, progress)
        await bring_back(store, parked)
    progress.finish()
    return Restoration(state, parked, unpublished)


async def _from_inputs(clients: Clients, state: Restored) -> WithoutOutcome | None:
    """What the input topics hold that was consumed without an output; None without them."""
    try:
        inputs = await read_inputs(clients, state.claims)
    except MissingTopic:
        return None
    return without_outcome(inputs.partitions, state)


async def bring_back(store: Store, parked: LiveParked) -> None:
    """The parked events, in their order, each with its reason: parked in the new database as
    they were in the old one (their customers held back behind them again)."""
    if not parked.events:
        return
    await store.ensure_customers({p.customer_id for p in parked.events if p.customer_id})
    async with store.transaction():
        await store.park(parked.events)


async def write(store: Store, state: Restored, progress: Progress) -> None:
    """In chunks, each its own transaction: an interrupted restore leaves a database that is
    not empty, and so is refused by the next attempt rather than half trusted."""
    await store.ensure_customers(state.customers)
    for claims in _chunks(state.claims):
        async with store.transaction():
            await store.claim_events(claims)
        progress.advance(len(claims))
    for sessions in _chunks(state.sessions.values()):
        async with store.transaction():
            await store.write_result(BatchResult(tuple(sessions), (), (), (), ()), [])
        progress.advance(len(sessions))
    for payments in _chunks(state.payments.values()):
        async with store.transaction():
            await store.write_result(BatchResult((), (), tuple(payments), (), ()), [])
        progress.advance(len(payments))


def _chunks(items: Any) -> Any:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk
