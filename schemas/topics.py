"""The default topic names and what each carries; every name is configurable in the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from schemas.event_types import MECHANIC_ACCEPTED, PAYMENT_COMPLETED, SESSION_ENDED

PAYMENTS_COMPLETED: Final = "payments.completed"
MECHANICS_ACCEPTED: Final = "mechanics.accepted"
SESSIONS_ENDED: Final = "sessions.ended"
SESSIONS_EVENTS: Final = "sessions.events"
FULFILLMENT_DLQ: Final = "fulfillment.dlq"


@dataclass(frozen=True, slots=True)
class Topics:
    payments_completed: str = PAYMENTS_COMPLETED
    mechanics_accepted: str = MECHANICS_ACCEPTED
    sessions_ended: str = SESSIONS_ENDED
    sessions_events: str = SESSIONS_EVENTS
    dlq: str = FULFILLMENT_DLQ

    def all(self) -> list[str]:
        """Every topic the service reads or writes: inputs, outputs, dead letters."""
        return [*self.input_types(), self.sessions_events, self.dlq]

    def input_types(self) -> dict[str, str]:
        """Input topic -> the one event type it carries: what `Decoder` takes."""
        return {
            self.payments_completed: PAYMENT_COMPLETED,
            self.mechanics_accepted: MECHANIC_ACCEPTED,
            self.sessions_ended: SESSION_ENDED,
        }


DEFAULT_TOPICS: Final = Topics()
