"""The rules, as pure functions: an event and the state it touches in, what happened out.

Time is always the event's own `time` (or, for an expiry, the deadline itself), never the wall
clock, and every id is derived from what was decided, so redelivery, replay and a rebuild into an
empty database reproduce the same output events byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import schemas
from schemas.ids import output_event_id_text
from schemas.output_fields import (
    AcceptanceRejectedFields,
    AcceptedFields,
    CancelledFields,
    CompletedFields,
    CreatedFields,
    OutputFields,
    RejectedFields,
    to_model,
    utc,
)
from service.core.outcomes import Kind, Reason, Verdict
from service.core.sessions import Policy, Session, Status, live_deadline


class Emitted(NamedTuple):
    """An output event, decided but not yet encoded (a named tuple: see `Verdict`)."""

    type: str
    id: str  # a UUID, kept as text: it is made for the wire and the database alike
    time: datetime
    key: str  # the customer id; the session id only where no customer is known
    causation_id: str
    # Plain frozen data, encoded straight to the outbox; `data` is its contract model.
    fields: OutputFields
    subject: str | None  # the session id; None for session.rejected
    # With `causation_id`, the cause's CloudEvents identity: what a restore claims as processed.
    causation_source: str = schemas.SOURCE

    @property
    def data(self) -> schemas.OutputEventData:
        """The published `data` as the contract's model (validated on each call: for tests and
        tools, not the hot path)."""
        return to_model(self.fields)


def identity(event: schemas.InputEvent) -> str:
    """What makes an input event itself: CloudEvents' (source, id), as deduplication reads it.
    Output ids derive from it, so two sources reusing an id never share an output id."""
    return f"{event.source}\x1f{event.id}"


def _emit(
    type_: str,
    *,
    causation: str,
    key: object,
    time: datetime,
    data: OutputFields,
    origin: str | None = None,
    source: str = schemas.SOURCE,
) -> Emitted:
    """`origin` (default: the causation id) is what the output id derives from: its last part
    is the subject, or the customer for a rejection, which has no subject. `source` is the
    cause's (this service's own for a timer)."""
    # uuid.UUID's str() is plain Python: the key's text serves again where it is the same id.
    key_text = str(key)
    if isinstance(data, RejectedFields):
        subject = None
        id_key = key_text if key == data.customer_id else str(data.customer_id)
    else:
        subject = id_key = key_text if key == data.session_id else str(data.session_id)
    return Emitted(
        type=type_,
        id=output_event_id_text(origin or causation, type_, id_key),
        time=time,
        key=key_text,
        causation_id=causation,
        fields=data,
        subject=subject,
        causation_source=source,
    )


def expire(session: Session, *, now: datetime, policy: Policy) -> tuple[Session, Emitted] | None:
    """Close an active session whose deadline is at or before `now`; None if it still stands.

    The closing time is the deadline, not `now`, and the causation is the event that started the
    timer, so the purge inside a transaction and the sweeper produce the very same event.
    """
    if session.status is Status.WAITING and session.expires_at <= now:
        closed = session._replace(
            status=Status.CANCELLED,
            closed_at=session.expires_at,
            close_reason=Reason.EXPIRED,
        )
        return closed, _emit(
            schemas.SESSION_CANCELLED,
            causation=session.created_event_id,
            key=session.customer_id,
            time=session.expires_at,
            data=CancelledFields(
                session_id=session.id,
                customer_id=session.customer_id,
                payment_id=session.payment_id,
                cancelled_at=session.expires_at,
            ),
        )
    deadline = live_deadline(session, policy)
    if deadline is not None and deadline <= now:
        assert session.accepted_event_id is not None
        return _complete(session, Reason.TIMED_OUT, deadline, session.accepted_event_id)
    return None


def _complete(
    session: Session,
    reason: Reason,
    at: datetime,
    causation: str,
    origin: str | None = None,
    source: str = schemas.SOURCE,
) -> tuple[Session, Emitted]:
    closed = session._replace(status=Status.COMPLETED, closed_at=at, close_reason=reason)
    return closed, _emit(
        schemas.SESSION_COMPLETED,
        causation=causation,
        origin=origin,
        source=source,
        key=session.customer_id,
        time=at,
        data=CompletedFields(
            session_id=session.id,
            customer_id=session.customer_id,
            reason=reason.value,
            completed_at=at,
        ),
    )


class Outcome(NamedTuple):
    """What one event decided: the sessions it changed (final versions), and what to publish."""

    verdict: Verdict
    changed: tuple[Session, ...] = ()
    emitted: tuple[Emitted, ...] = ()
    session_id: UUID | None = None


def decide_payment(
    event: schemas.PaymentCompletedEvent, active: Session | None, *, policy: Policy
) -> Outcome:
    """A fresh payment (its payment_id never decided) for a customer whose expired sessions
    are already purged: create a waiting session, or reject when one is still active."""
    payment = event.data
    # In UTC once, here: every time derived from it is then written without converting again.
    now = utc(event.time)
    if active is not None:
        return Outcome(
            verdict=Verdict(Kind.REJECTED),  # the reason is always active_session
            session_id=active.id,
            emitted=(
                _emit(
                    schemas.SESSION_REJECTED,
                    causation=event.id,
                    origin=identity(event),
                    source=event.source,
                    key=payment.customer_id,
                    time=now,
                    data=RejectedFields(
                        payment_id=payment.payment_id,
                        customer_id=payment.customer_id,
                        active_session_id=active.id,
                    ),
                ),
            ),
        )
    session_id = schemas.session_id_for_payment(payment.payment_id)
    expires_at = now + policy.request_ttl
    created = _emit(
        schemas.SESSION_CREATED,
        causation=event.id,
        origin=identity(event),
        source=event.source,
        key=payment.customer_id,
        time=now,
        data=CreatedFields(
            session_id=session_id,
            customer_id=payment.customer_id,
            payment_id=payment.payment_id,
            session_type=payment.session_type,
            created_at=now,
            expires_at=expires_at,
        ),
    )
    session = Session(
        id=session_id,
        customer_id=payment.customer_id,
        payment_id=payment.payment_id,
        session_type=str(payment.session_type),
        status=Status.WAITING,
        created_at=now,
        expires_at=expires_at,
        created_event_id=created.id,
    )
    return Outcome(
        verdict=Verdict(Kind.CREATED), session_id=session_id, changed=(session,), emitted=(created,)
    )


def decide_acceptance(event: schemas.MechanicAcceptedEvent, target: Session | None) -> Outcome:
    """The first acceptance of a waiting session before its deadline wins; `target` is the
    session as it stands after the customer's purge at the acceptance's time."""
    accepted = event.data
    reason: Reason | None
    if target is None:
        reason = Reason.UNKNOWN_SESSION
    elif target.status is Status.LIVE:
        reason = Reason.ALREADY_ACCEPTED
    elif target.status is Status.COMPLETED:
        reason = Reason.COMPLETED
    elif event.time >= target.expires_at:
        # Refused as expired whether or not the sweeper has cancelled it yet.
        reason = Reason.EXPIRED
    elif target.status is Status.CANCELLED:
        reason = Reason.CANCELLED
    else:
        reason = None
    if reason is not None or target is None:
        return Outcome(
            verdict=Verdict(Kind.ACCEPTANCE_REJECTED, reason or Reason.UNKNOWN_SESSION),
            session_id=accepted.session_id,
            emitted=(
                _emit(
                    schemas.SESSION_ACCEPTANCE_REJECTED,
                    causation=event.id,
                    origin=identity(event),
                    source=event.source,
                    key=target.customer_id if target else accepted.session_id,
                    time=event.time,
                    data=AcceptanceRejectedFields(
                        session_id=accepted.session_id,
                        mechanic_id=accepted.mechanic_id,
                        reason=(reason or Reason.UNKNOWN_SESSION).value,
                    ),
                ),
            ),
        )
    emitted = _emit(
        schemas.SESSION_ACCEPTED,
        causation=event.id,
        origin=identity(event),
        source=event.source,
        key=target.customer_id,
        time=event.time,
        data=AcceptedFields(
            session_id=target.id,
            customer_id=target.customer_id,
            mechanic_id=accepted.mechanic_id,
            accepted_at=event.time,
        ),
    )
    live = target._replace(
        status=Status.LIVE,
        mechanic_id=accepted.mechanic_id,
        accepted_at=event.time,
        accepted_event_id=emitted.id,
    )
    return Outcome(
        verdict=Verdict(Kind.ACCEPTED), session_id=target.id, changed=(live,), emitted=(emitted,)
    )


def decide_ended(event: schemas.SessionEndedEvent, target: Session | None) -> Outcome:
    """A live session that ends is completed; anything else has nothing left to decide."""
    if target is None:
        return Outcome(
            verdict=Verdict(Kind.IGNORED, Reason.UNKNOWN_SESSION),
            session_id=event.data.session_id,
        )
    if target.status is not Status.LIVE:
        return Outcome(verdict=Verdict(Kind.IGNORED, Reason(target.status)), session_id=target.id)
    closed, emitted = _complete(
        target, Reason.ENDED, event.time, event.id, identity(event), event.source
    )
    return Outcome(
        verdict=Verdict(Kind.COMPLETED), session_id=target.id, changed=(closed,), emitted=(emitted,)
    )
