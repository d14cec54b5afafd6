"""`fulfillment restore`: the database rebuilt from `sessions.events` alone, for when the
inputs have expired from their topics. Sessions, payments' outcomes, customers and the decided
inputs' dedupe records come from the outputs that announced them, written through the `Store`
port in chunks; `fulfillment run` on the result then decides every new event as the old
database would have.

Not restored: the dedupe records of inputs that caused no output (duplicates, ignored ends),
which no output names; and the outbox (what was published is published).
"""

from __future__ import annotations

import json
import sys
from itertools import islice
from typing import Any, TypeVar

from service.adapters import postgres
from service.core.batch import BatchResult
from service.core.ports import Store
from service.core.restore_state import Restored, restore_state
from service.entrypoints.history import (
    BadTarget,
    failure_line,
    open_empty_target,
    read_changelog,
)
from service.entrypoints.progress import Progress
from service.settings import Settings

CHUNK = 5_000
T = TypeVar("T")


async def restore(settings: Settings, *, database_url: str, as_json: bool = False) -> int:
    try:
        clients, pool = await open_empty_target(settings, database_url)
    except BadTarget as error:
        _error(str(error))
        return error.exit_code
    try:
        progress = Progress("restore", 0)
        state = restore_state(await read_changelog(clients))
        progress.total = len(state.sessions) + len(state.payments) + len(state.claims)
        async with postgres.store_of(pool) as store:
            await write(store, state, progress)
        progress.finish()
    except Exception as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        _error(line)
        return 1
    finally:
        await pool.close()
    summary = _summary(state, progress.seconds)
    if as_json:
        print(json.dumps(summary))
    else:
        print(
            f"restored from {summary['outputs']} outputs in {summary['seconds']} s: "
            f"{summary['sessions']} sessions ({summary['active']} active), "
            f"{summary['payments']} payments, {summary['customers']} customers, "
            f"{summary['dedupe_records']} dedupe records"
        )
    return 0


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
    print(f"fulfillment restore: {message}", file=sys.stderr)
