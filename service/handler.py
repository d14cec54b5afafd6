"""One batch of input events, decided in one PostgreSQL transaction: lock the customers, claim
the events (dedupe), load what they touch, decide, write the state change and the outbox rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import schemas
from service.adapters import database
from service.core.batch import BatchResult, decide_batch, sweep
from service.core.decide import Emitted
from service.core.sessions import Policy


def outbox_row(emitted: Emitted) -> tuple[str, bytes, bytes]:
    event = schemas.output_event(
        emitted.data, causation_id=emitted.causation_id, time=emitted.time, id=emitted.id
    )
    return emitted.id, emitted.key.encode(), schemas.encode(event)


async def handle_batch(
    conn: database.Connection, events: Sequence[schemas.InputEvent], *, policy: Policy
) -> BatchResult:
    payments = [e.data for e in events if isinstance(e.data, schemas.PaymentCompleted)]
    named = list(
        dict.fromkeys(
            e.data.session_id for e in events if not isinstance(e.data, schemas.PaymentCompleted)
        )
    )
    payers = {p.customer_id for p in payments}
    if payers:
        await database.ensure_customers(conn, payers)
    owners = set((await database.customers_of_sessions(conn, named)).values())
    while True:
        customers = sorted(payers | owners)
        async with conn.transaction():
            await database.lock_customers(conn, customers)
            snapshot = await database.load_snapshot(
                conn, customers, named, [p.payment_id for p in payments]
            )
            # A named session committed after `owners` was read belongs to a customer not
            # locked yet: lock the larger set and load again before deciding anything.
            late = {s.customer_id for s in snapshot.sessions.values()} - set(customers)
            if late:
                owners |= late
                continue
            fresh = await database.claim_events(conn, [(e.source, e.id) for e in events])
            todo = []
            for event in events:
                key = (event.source, event.id)
                if key in fresh:
                    fresh.discard(key)  # a second copy within the batch is a duplicate too
                    todo.append(event)
            result = decide_batch(snapshot, todo, policy=policy)
            await database.write_result(conn, result, [outbox_row(e) for e in result.emitted])
        if result.emitted:
            await database.announce_outbox(conn)
        return result


async def sweep_customers(
    conn: database.Connection, customer_ids: Sequence[UUID], *, now: datetime, policy: Policy
) -> BatchResult:
    """Close the due sessions of these customers, with the same events the purge would make.

    The customers are locked in id order like any batch, so the sweeper waits a moment for a
    busy customer instead of skipping it: every due session is closed in this sweep."""
    async with conn.transaction():
        locked = sorted(customer_ids)
        await database.lock_customers(conn, locked)
        sessions = await database.active_sessions(conn, locked)
        result = sweep(sessions, now=now, policy=policy, run_id=f"sweep@{now.isoformat()}")
        await database.write_result(conn, result, [outbox_row(e) for e in result.emitted])
    if result.emitted:
        await database.announce_outbox(conn)
    return result
