"""The input events: what the payment pipeline, the mechanic app and the session runtime send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from schemas.envelope import CloudEvent
from schemas.event_types import MECHANIC_ACCEPTED, PAYMENT_COMPLETED, SESSION_ENDED, SessionType
from schemas.limits import (
    MAX_AMOUNT_CENTS,
    MAX_PAYMENT_ID_BYTES,
    MAX_PAYMENT_ID_CHARS,
    NO_NUL_PATTERN,
)

PaymentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PAYMENT_ID_CHARS,
        pattern=NO_NUL_PATTERN,
        description="The payment provider's id; unique per payment. At most "
        f"{MAX_PAYMENT_ID_CHARS} characters and {MAX_PAYMENT_ID_BYTES} bytes in UTF-8; no NUL",
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
    # At most a signed 64-bit integer: what every consumer of the amount can hold.
    amount_cents: StrictInt = Field(gt=0, le=MAX_AMOUNT_CENTS)
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
