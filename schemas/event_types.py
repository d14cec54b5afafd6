"""The event type names and the closed vocabularies of the contract, in one place.

The service and its subscribers use these names instead of repeating the strings; the models'
`Literal` annotations repeat each string once and a test checks they agree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

PAYMENT_COMPLETED: Final = "payment.completed"
MECHANIC_ACCEPTED: Final = "mechanic.accepted"
SESSION_ENDED: Final = "session.ended"

SESSION_CREATED: Final = "session.created"
SESSION_REJECTED: Final = "session.rejected"
SESSION_CANCELLED: Final = "session.cancelled"
SESSION_ACCEPTED: Final = "session.accepted"
SESSION_ACCEPTANCE_REJECTED: Final = "session.acceptance_rejected"
SESSION_COMPLETED: Final = "session.completed"

INPUT_TYPES: Final = (PAYMENT_COMPLETED, MECHANIC_ACCEPTED, SESSION_ENDED)
OUTPUT_TYPES: Final = (
    SESSION_CREATED,
    SESSION_REJECTED,
    SESSION_CANCELLED,
    SESSION_ACCEPTED,
    SESSION_ACCEPTANCE_REJECTED,
    SESSION_COMPLETED,
)
EVENT_TYPES: Final = INPUT_TYPES + OUTPUT_TYPES


class SessionType(StrEnum):
    CHAT = "chat"
    VIDEO = "video"
    DIAGNOSTIC = "diagnostic"


class AcceptanceRejectionReason(StrEnum):
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    ALREADY_ACCEPTED = "already_accepted"
    COMPLETED = "completed"
    UNKNOWN_SESSION = "unknown_session"


class CompletionReason(StrEnum):
    ENDED = "ended"
    TIMED_OUT = "timed_out"


# Single-valued reasons stay Literals: an enum of one member would add nothing.
RejectionReason = Literal["active_session"]
CancellationReason = Literal["expired"]
