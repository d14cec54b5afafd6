"""The customer an event belongs to: a payment names its customer; an acceptance or an end
names a session, whose customer the caller looks up (in the sessions it loaded, or in those a
batch's own payments create). Pure."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import schemas


def customer_of(event: schemas.InputEvent, owner_of: Callable[[UUID], UUID | None]) -> UUID | None:
    """None for an acceptance or an end of a session `owner_of` does not know."""
    match event:
        case schemas.PaymentCompletedEvent(data=payment):
            return payment.customer_id
        case schemas.MechanicAcceptedEvent() | schemas.SessionEndedEvent():
            return owner_of(event.data.session_id)
