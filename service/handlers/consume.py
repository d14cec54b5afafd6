"""One batch of input events, decided in one transaction: lock the customers, claim the events
(dedupe), load what they touch, decide, write the state change and the outbox rows."""

from __future__ import annotations

from collections.abc import Sequence

import schemas
from service.core.batch import BatchResult, decide_batch
from service.core.ports import Store
from service.core.sessions import Policy
from service.handlers.outbox import NO_TRACES, Traces, outbox_rows


async def handle_batch(
    store: Store,
    events: Sequence[schemas.InputEvent],
    *,
    policy: Policy,
    traces: Traces = NO_TRACES,
) -> BatchResult:
    payments = [e.data for e in events if isinstance(e, schemas.PaymentCompletedEvent)]
    named = list(
        dict.fromkeys(
            e.data.session_id for e in events if not isinstance(e, schemas.PaymentCompletedEvent)
        )
    )
    payers = {p.customer_id for p in payments}
    if payers:
        await store.ensure_customers(payers)
    owners = set((await store.customers_of_sessions(named)).values())
    while True:
        customers = sorted(payers | owners)
        async with store.transaction():
            await store.lock_customers(customers)
            snapshot = await store.load_snapshot(customers, named, [p.payment_id for p in payments])
            # A named session committed after `owners` was read belongs to a customer not
            # locked yet: lock the larger set and load again before deciding anything.
            late = {s.customer_id for s in snapshot.sessions.values()} - set(customers)
            if late:
                owners |= late
                continue
            fresh = await store.claim_events([(e.source, e.id) for e in events])
            todo = []
            for event in events:
                key = (event.source, event.id)
                if key in fresh:
                    fresh.discard(key)  # a second copy within the batch is a duplicate too
                    todo.append(event)
            result = decide_batch(snapshot, todo, policy=policy)
            await store.write_result(result, outbox_rows(result, traces))
        if result.emitted:
            await store.announce_outbox()
        return result
