"""`fulfillment restore`: the database rebuilt from `sessions.events` alone, for when the
inputs have expired from their topics. Sessions, payments' outcomes, customers and the decided
inputs' dedupe records come from the outputs that announced them, written through the `Store`
port in chunks; `fulfillment run` on the result then decides every new event as the old
database would have.

Not restored: the dedupe records of inputs that caused no output (duplicates, ignored ends),
which no output names; and the outbox (what was published is published).

Parked events were never published: the changelog cannot bring them back. They are copied, in
their order and with their reasons, from the database being replaced (FULFILLMENT_DATABASE_URL)
when it can still be read, and named. When it cannot, the restore says so and exits 4 unless
`--accept-parked`: it cannot tell whether a payment there is left without its outcome. It then
brings back, parked, what the input topics still hold that was consumed without any output
(`core/without_outcome.py`), and names it; ends, and what retention deleted, stay unknown.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, TypeVar

from service.adapters import postgres
from service.bootstrap.factory import Clients
from service.core.batch import BatchResult
from service.core.ports import Store
from service.core.restore_state import Restored, restore_state
from service.core.without_outcome import WithoutOutcome, without_outcome
from service.entrypoints import output
from service.entrypoints.history import (
    BadTarget,
    LiveParked,
    MissingTopic,
    failure_line,
    open_empty_target,
    parked_line,
    read_changelog,
    read_inputs,
    read_live_parked,
)
from service.entrypoints.output import Progress
from service.settings import Settings

CHUNK = 5_000
T = TypeVar("T")


async def restore(
    settings: Settings, *, database_url: str, as_json: bool = False, accept_parked: bool = False
) -> int:
    try:
        clients, pool = await open_empty_target(settings, database_url)
    except BadTarget as error:
        _error(str(error))
        return error.exit_code
    try:
        progress = Progress("restore", 0)
        state = restore_state(await read_changelog(clients))
        parked = await read_live_parked(settings)
        unpublished = await _from_inputs(clients, state) if parked.unknown else None
        if unpublished is not None:
            parked = LiveParked(unpublished.events, parked.unknown)
        progress.total = len(state.sessions) + len(state.payments) + len(state.claims)
        async with postgres.store_of(pool) as store:
            await write(store, state, progress)
            await bring_back(store, parked)
        progress.finish()
    except Exception as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        _error(line)
        return 1
    finally:
        await pool.close()
    summary = _summary(state, progress.seconds) | {
        "parked": parked.as_rows(),
        "parked_unknown": parked.unknown,
        "ends_without_output": None if unpublished is None else unpublished.ends,
    }
    if as_json:
        output.emit_json(summary, one_line=True)
    else:
        print(
            f"restored from {summary['outputs']} outputs in {summary['seconds']} s: "
            f"{summary['sessions']} sessions ({summary['active']} active), "
            f"{summary['payments']} payments, {summary['customers']} customers, "
            f"{summary['dedupe_records']} dedupe records"
        )
        _print_parked(parked, unpublished)
    if parked.unknown:  # on stderr, with --json too
        outcome = "restored without them (--accept-parked)" if accept_parked else "exit 4"
        _error(
            f"parked events unknown: {parked.unknown}; any parked there and not on the input "
            f"topics are not restored: {outcome}"
        )
    return output.PARTLY if parked.unknown and not accept_parked else output.OK


async def _from_inputs(clients: Clients, state: Restored) -> WithoutOutcome | None:
    """What the input topics hold that was consumed without an output; None without them."""
    try:
        inputs = await read_inputs(clients, state.claims)
    except MissingTopic:
        return None
    return without_outcome(inputs.partitions, state)


def _print_parked(parked: LiveParked, unpublished: WithoutOutcome | None) -> None:
    if parked.events:
        where = "the database being replaced" if unpublished is None else "the input topics"
        print(
            f"{len(parked.events)} parked events, not on sessions.events, brought back from "
            f"{where}: `fulfillment parked release` decides them"
        )
        for row in parked.as_rows():
            print(parked_line(row))
    if unpublished is not None and unpublished.ends:
        print(f"{unpublished.ends} ends without an output (ignored, or parked): not restored")


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


def _summary(state: Restored, seconds: float) -> dict[str, Any]:
    return {
        "outputs": state.outputs,
        "sessions": len(state.sessions),
        "active": sum(s.active for s in state.sessions.values()),
        "payments": len(state.payments),
        "customers": len(state.customers),
        "dedupe_records": len(state.claims),
        "seconds": round(seconds, 2),
    }


def _error(message: str) -> None:
    output.error(message, command="restore")
