"""Parking: which events of a batch are set aside behind a poison event instead of decided.

A poison event is one whose decision fails for a reason that is not an outage (a bug, a value
the database refuses). Its customer is parked: that event and every later event of the same
customer wait, in arrival order, until an operator releases them, while every other customer's
events are decided as usual. An event with no known customer (an acceptance or end of a session
nobody created) cannot fail for a customer's state; if it is poison it is parked on its own and
blocks nobody. Pure: the store says who is parked, the consumer says which events are poison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import schemas
from service.core.owners import customer_of
from service.core.sessions import Session

EventKey = tuple[str, str]  # CloudEvents identity: (source, id)

# The reason given to a customer's events parked behind the first one.
BEHIND_PARKED = "customer is parked"


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """One event set aside; `seq` (arrival order) and `parked_at` are the store's to assign."""

    customer_id: UUID | None
    source: str
    event_id: str
    type: str
    body: bytes  # the decoded event as JSON, decoded again on release
    reason: str
    seq: int = 0
    parked_at: datetime | None = None

    @property
    def key(self) -> EventKey:
        return (self.source, self.event_id)

    def event(self) -> schemas.InputEvent:
        """The event again; raises pydantic's ValidationError if the body no longer decodes."""
        model = schemas.INPUT_EVENT_CLASSES[self.type]
        event: schemas.InputEvent = model.model_validate_json(self.body)
        return event


def key_of(event: schemas.InputEvent) -> EventKey:
    return (event.source, event.id)


def owners_in_batch(
    events: Iterable[schemas.InputEvent], sessions: Mapping[UUID, Session]
) -> dict[UUID, UUID]:
    """Session id -> customer id, for the loaded sessions and, when an acceptance or end names
    a session that is not loaded, for those the batch's own payments would create (a session id
    follows from its payment id), so that an acceptance of a session created earlier in the
    same batch counts as its customer's event."""
    owners = {s.id: s.customer_id for s in sessions.values()}
    payments = []
    unresolved = False
    for event in events:
        if isinstance(event, schemas.PaymentCompletedEvent):
            payments.append(event.data)
        elif event.data.session_id not in owners:
            unresolved = True
    # Only a session named but not loaded can be one of this batch's payments' sessions: a
    # batch without such a name (every batch of payments alone) derives no session id here.
    if unresolved:
        for payment in payments:
            session_id = schemas.session_id_for_payment(payment.payment_id)
            owners.setdefault(session_id, payment.customer_id)
    return owners


def set_aside(
    events: Sequence[schemas.InputEvent],
    owners: Mapping[UUID, UUID],
    *,
    held: Iterable[UUID],
    poison: Mapping[EventKey, str],
) -> tuple[list[schemas.InputEvent], list[ParkedEvent]]:
    """Split `events` (in arrival order) into those to decide and those to park: the poison
    ones, and every event of a customer who is parked (`held`) or becomes parked by a poison
    event earlier in the batch. Both lists keep arrival order."""
    blocked = set(held)
    decide: list[schemas.InputEvent] = []
    parked: list[ParkedEvent] = []
    for event in events:
        customer = customer_of(event, owners.get)
        reason = poison.get(key_of(event))
        if reason is None and customer is not None and customer in blocked:
            reason = BEHIND_PARKED
        if reason is None:
            decide.append(event)
            continue
        if customer is not None:
            blocked.add(customer)
        parked.append(
            ParkedEvent(
                customer_id=customer,
                source=event.source,
                event_id=event.id,
                type=event.type,
                body=event.model_dump_json(by_alias=True, exclude_none=True).encode(),
                reason=reason,
            )
        )
    return decide, parked
