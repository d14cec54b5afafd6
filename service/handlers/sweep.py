"""The sweeper's one step: close the due sessions of some customers, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from service.core.batch import BatchResult, sweep
from service.core.ports import Store
from service.core.sessions import Policy
from service.handlers.outbox import outbox_row


async def sweep_customers(
    store: Store, customer_ids: Sequence[UUID], *, now: datetime, policy: Policy
) -> BatchResult:
    """Close the due sessions of these customers, with the same events the purge would make.

    The customers are locked in id order like any batch, so the sweeper waits a moment for a
    busy customer instead of skipping it: every due session is closed in this sweep. A customer
    parked by then (read under the lock, as parking writes it) is left alone: nothing is
    published for them until they are released."""
    async with store.transaction():
        locked = sorted(customer_ids)
        await store.lock_customers(locked)
        parked = await store.parked_customers(locked)
        sweeping = [c for c in locked if c not in parked] if parked else locked
        sessions = await store.active_sessions(sweeping) if sweeping else []
        result = sweep(sessions, now=now, policy=policy, run_id=f"sweep@{now.isoformat()}")
        await store.write_result(result, [outbox_row(e) for e in result.emitted])
    if result.emitted:
        await store.announce_outbox()
    return result
