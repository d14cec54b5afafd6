"""The input events: what the payment pipeline, the mechanic app and the session runtime send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from schemas.envelope import CloudEvent
from schemas.event_types import MECHANIC_ACCEPTED, PAYMENT_COMPLETED, SESSION_ENDED, SessionType

PaymentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00]+$",
        description="The payment provider's id; unique per payment",
    ),
]
# Any three capital letters: the shape of an ISO 4217 code. Checking against the list of
# assigned codes would need updating as codes change; the payment pipeline is the authority on
# which ones it takes, this service only carries the value.
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]


class _InputData(BaseModel):
    # Tolerant reader: producers may add fields to `data` without breaking this service.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PaymentCompleted(_InputData):
    payment_id: PaymentId
    customer_id: UUID
    # Strict: a string "2999" or a float 2999.0 is a producer bug, not an amount.
    amount_cents: StrictInt = Field(gt=0)
    currency: CurrencyCode
    session_type: SessionType


class MechanicAccepted(_InputData):
    session_id: UUID = Field(description="From session.created")
    mechanic_id: UUID


class SessionEnded(_InputData):
    session_id: UUID


class PaymentCompletedEvent(CloudEvent[PaymentCompleted]):
    """A customer has paid for one help session."""

    type: Literal["payment.completed"]


class MechanicAcceptedEvent(CloudEvent[MechanicAccepted]):
    """A mechanic accepted a waiting session; `time` is the moment of acceptance."""

    type: Literal["mechanic.accepted"]


class SessionEndedEvent(CloudEvent[SessionEnded]):
    """The session runtime reports that a live session finished."""

    type: Literal["session.ended"]


InputEvent = PaymentCompletedEvent | MechanicAcceptedEvent | SessionEndedEvent

INPUT_EVENT_CLASSES: Final[Mapping[str, type[InputEvent]]] = {
    PAYMENT_COMPLETED: PaymentCompletedEvent,
    MECHANIC_ACCEPTED: MechanicAcceptedEvent,
    SESSION_ENDED: SessionEndedEvent,
}
