"""The output events this service publishes on `sessions.events`, one per decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal, cast
from uuid import UUID

from pydantic import Field, TypeAdapter

from schemas.envelope import SOURCE, OutputCloudEvent, OutputData, UtcDatetime
from schemas.event_types import (
    SESSION_ACCEPTANCE_REJECTED,
    SESSION_ACCEPTED,
    SESSION_CANCELLED,
    SESSION_COMPLETED,
    SESSION_CREATED,
    SESSION_REJECTED,
    AcceptanceRejectionReason,
    CancellationReason,
    CompletionReason,
    RejectionReason,
    SessionType,
)
from schemas.inputs import PaymentId


class _AboutSession(OutputData):
    # Declared here so that it comes first in every such event's data.
    session_id: UUID

    @property
    def subject(self) -> str:
        return str(self.session_id)

    @property
    def id_key(self) -> str:
        return str(self.session_id)


class SessionCreated(_AboutSession):
    customer_id: UUID
    payment_id: PaymentId
    session_type: SessionType
    created_at: UtcDatetime
    expires_at: UtcDatetime = Field(description="Cancelled as expired if not accepted by then")


class SessionRejected(OutputData):
    payment_id: PaymentId
    customer_id: UUID
    reason: RejectionReason = "active_session"
    active_session_id: UUID = Field(description="The customer's session that is still active")

    @property
    def id_key(self) -> str:
        # No session of its own: the customer, also the message key, stands in for the subject.
        return str(self.customer_id)


class SessionCancelled(_AboutSession):
    customer_id: UUID
    payment_id: PaymentId
    reason: CancellationReason = "expired"
    cancelled_at: UtcDatetime


class SessionAccepted(_AboutSession):
    customer_id: UUID
    mechanic_id: UUID
    accepted_at: UtcDatetime


class SessionAcceptanceRejected(_AboutSession):
    mechanic_id: UUID
    reason: AcceptanceRejectionReason


class SessionCompleted(_AboutSession):
    customer_id: UUID
    reason: CompletionReason
    completed_at: UtcDatetime


class SessionCreatedEvent(OutputCloudEvent[SessionCreated]):
    """A payment was fulfilled: a waiting session now exists."""

    type: Literal["session.created"] = SESSION_CREATED
    event_type: ClassVar[str] = SESSION_CREATED
    subject: str


class SessionRejectedEvent(OutputCloudEvent[SessionRejected]):
    """A payment could not be fulfilled; the payment pipeline refunds on this."""

    type: Literal["session.rejected"] = SESSION_REJECTED
    event_type: ClassVar[str] = SESSION_REJECTED
    # No subject: the rejected payment created no session. Absent on the wire, not null.
    subject: None = Field(default=None, exclude=True)


class SessionCancelledEvent(OutputCloudEvent[SessionCancelled]):
    """A waiting session expired unaccepted."""

    type: Literal["session.cancelled"] = SESSION_CANCELLED
    event_type: ClassVar[str] = SESSION_CANCELLED
    subject: str


class SessionAcceptedEvent(OutputCloudEvent[SessionAccepted]):
    """A mechanic's acceptance won; the session is live."""

    type: Literal["session.accepted"] = SESSION_ACCEPTED
    event_type: ClassVar[str] = SESSION_ACCEPTED
    subject: str


class SessionAcceptanceRejectedEvent(OutputCloudEvent[SessionAcceptanceRejected]):
    """A mechanic's acceptance lost or came too late."""

    type: Literal["session.acceptance_rejected"] = SESSION_ACCEPTANCE_REJECTED
    event_type: ClassVar[str] = SESSION_ACCEPTANCE_REJECTED
    subject: str


class SessionCompletedEvent(OutputCloudEvent[SessionCompleted]):
    """A live session ended, or passed the maximum live duration."""

    type: Literal["session.completed"] = SESSION_COMPLETED
    event_type: ClassVar[str] = SESSION_COMPLETED
    subject: str


OutputEvent = (
    SessionCreatedEvent
    | SessionRejectedEvent
    | SessionCancelledEvent
    | SessionAcceptedEvent
    | SessionAcceptanceRejectedEvent
    | SessionCompletedEvent
)
OutputEventData = (
    SessionCreated
    | SessionRejected
    | SessionCancelled
    | SessionAccepted
    | SessionAcceptanceRejected
    | SessionCompleted
)

OUTPUT_EVENT_CLASSES: Final[Mapping[str, type[OutputEvent]]] = {
    SESSION_CREATED: SessionCreatedEvent,
    SESSION_REJECTED: SessionRejectedEvent,
    SESSION_CANCELLED: SessionCancelledEvent,
    SESSION_ACCEPTED: SessionAcceptedEvent,
    SESSION_ACCEPTANCE_REJECTED: SessionAcceptanceRejectedEvent,
    SESSION_COMPLETED: SessionCompletedEvent,
}
_CLASS_BY_DATA: Final[Mapping[type[OutputData], type[OutputEvent]]] = {
    SessionCreated: SessionCreatedEvent,
    SessionRejected: SessionRejectedEvent,
    SessionCancelled: SessionCancelledEvent,
    SessionAccepted: SessionAcceptedEvent,
    SessionAcceptanceRejected: SessionAcceptanceRejectedEvent,
    SessionCompleted: SessionCompletedEvent,
}


def output_event(
    data: OutputEventData,
    *,
    causation_id: str,
    time: datetime,
    id: UUID | str | None = None,
    causation_source: str = SOURCE,
) -> OutputEvent:
    """The output event carrying `data`, whatever its type; see `OutputCloudEvent.build`."""
    event_class: Any = _CLASS_BY_DATA[type(data)]
    return cast(
        OutputEvent,
        event_class.build(
            data, causation_id=causation_id, time=time, id=id, causation_source=causation_source
        ),
    )


# Discriminated on `type`: one dictionary lookup picks the model, no trial and error.
OUTPUT_EVENT_ADAPTER: Final[TypeAdapter[OutputEvent]] = TypeAdapter(
    Annotated[OutputEvent, Field(discriminator="type")]
)
