"""One batch of input events, decided in one transaction: lock the customers, set aside what is
parked, claim the rest (dedupe), load what they touch, decide, write the state change, the
outbox rows and the parked events."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from operator import attrgetter
from uuid import UUID

import schemas
from service.core.batch import BatchResult, decide_batch
from service.core.owners import customer_of
from service.core.parking import EventKey, ParkedEvent, key_of, owners_in_batch, set_aside
from service.core.ports import Store
from service.core.sessions import Policy
from service.handlers.outbox import NO_TRACES, Traces, outbox_rows

_AS_INT = attrgetter("int")


class FailpointHit(Exception):
    """Raised on purpose for a customer named by FULFILLMENT_FAILPOINT_CUSTOMERS: stands in for
    a bug, to exercise parking."""


class _Trial(Exception):
    """Carries a trial's result out of its transaction, which therefore rolls back."""

    def __init__(self, result: BatchResult) -> None:
        self.result = result


class _Relock(Exception):
    """Rolls the transaction back, to begin again with more customers locked."""


async def handle_batch(
    store: Store,
    events: Sequence[schemas.InputEvent],
    *,
    policy: Policy,
    traces: Traces = NO_TRACES,
    poison: Mapping[EventKey, str] | None = None,
    trial: bool = False,
    releasing: Sequence[ParkedEvent] = (),
    failpoint: frozenset[UUID] = frozenset(),
) -> BatchResult:
    """Decide `events` in arrival order and commit.

    `traces`: the trace context of the events that carried one, kept on the outputs they cause.
    `poison`: events (by key) to park with their customer instead of deciding. `trial`: decide
    and write, then roll back; the result says what would have been committed. `releasing`: the
    parked events that `events` were decoded from, all of their customers' parked events up to
    some point; their customers' parked state does not hold them back, those decided now leave
    `parked_events` in this transaction, those parked again keep their place. The result's
    `parked` lists only events newly parked.
    """
    payments = [e.data for e in events if isinstance(e, schemas.PaymentCompletedEvent)]
    named = list(
        dict.fromkeys(
            e.data.session_id for e in events if not isinstance(e, schemas.PaymentCompletedEvent)
        )
    )
    payers = {p.customer_id for p in payments}
    owners = set((await store.customers_of_sessions(named)).values())
    released = {p.customer_id for p in releasing if p.customer_id is not None}
    ensure: set[UUID] = payers  # their lock rows, committed on their own before the locks
    while True:
        # By the integer, which is how UUIDs order, without uuid.UUID's Python-level __lt__.
        customers = sorted(payers | owners | released, key=_AS_INT)
        try:
            async with store.locked(customers, ensure=ensure):
                ensure = set()
                # Every event claimed with the snapshot's read, in one step; those set aside
                # below give their fresh claims back.
                fresh, snapshot = await store.claim_and_load(
                    [(e.source, e.id) for e in events],
                    customers,
                    named,
                    [p.payment_id for p in payments],
                )
                # A named session committed after `owners` was read belongs to a customer not
                # locked yet: roll back (the claims too), lock the larger set and load again
                # before deciding anything.
                late = {s.customer_id for s in snapshot.sessions.values()} - set(customers)
                if late:
                    owners |= late
                    raise _Relock
                held = snapshot.parked_customers - released
                session_owners = owners_in_batch(events, snapshot.sessions)
                deciding: Sequence[schemas.InputEvent] = events
                parked: list[ParkedEvent] = []
                if held or poison:  # otherwise nothing is set aside, nothing is claimed back
                    deciding, parked = set_aside(
                        events, session_owners, held=held, poison=poison or {}
                    )
                    # The claims of events set aside, but for those of which a copy is decided.
                    aside = fresh & ({p.key for p in parked} - {key_of(e) for e in deciding})
                    if aside:
                        await store.unclaim_events(sorted(aside))
                        fresh -= aside
                if releasing:
                    # What stays parked keeps its place (its seq), so the order holds for the next
                    # release; only what is decided now leaves the table.
                    staying = {p.key for p in parked}
                    await store.unpark([p.seq for p in releasing if p.key not in staying])
                    parked = [p for p in parked if p.key not in {r.key for r in releasing}]
                todo = []
                for event in deciding:
                    key = (event.source, event.id)
                    if key in fresh:
                        fresh.discard(key)  # a second copy within the batch is a duplicate too
                        todo.append(event)
                if failpoint:
                    _trip(failpoint, todo, session_owners)
                result = decide_batch(snapshot, todo, policy=policy)
                await store.write_result(result, outbox_rows(result, traces))
                await store.park(parked)
                result = dataclasses.replace(result, parked=tuple(parked))
                if trial:
                    raise _Trial(result)
        except _Trial as done:  # raised out of the transaction, which rolls back
            return done.result
        except _Relock:
            continue
        if result.emitted:
            await store.announce_outbox()
        return result


def _trip(
    failpoint: frozenset[UUID], events: Sequence[schemas.InputEvent], owners: Mapping[UUID, UUID]
) -> None:
    for event in events:
        customer = customer_of(event, owners.get)
        if customer in failpoint:
            raise FailpointHit(f"failpoint: deciding {event.type} {event.id!r} of {customer}")
