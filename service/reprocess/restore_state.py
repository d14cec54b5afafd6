"""The state the published outputs imply, folded from the changelog alone: every change of a
session, every payment's outcome and every decided input is announced on `sessions.events`, so
the database a restore writes is the one the live service had. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import schemas
from service.core.batch import PaymentRecord
from service.core.outcomes import Kind, Reason
from service.core.sessions import Session, Status
from service.reprocess.changelog import Published


class Inconsistent(ValueError):
    """An output names a session no earlier output created: the changelog is incomplete (its
    start deleted by retention, or compacted)."""


@dataclass(slots=True)
class Restored:
    sessions: dict[UUID, Session] = field(default_factory=dict)
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    claims: dict[tuple[str, str], None] = field(default_factory=dict)  # (source, id) decided
    customers: dict[UUID, None] = field(default_factory=dict)
    outputs: int = 0


def restore_state(outputs: Iterable[Published]) -> Restored:
    """`outputs` in changelog order (each customer's in the order they were decided)."""
    state = Restored()
    seen: set[str] = set()
    for out in outputs:
        if out.id in seen:
            continue  # a copy the relay published again
        seen.add(out.id)
        state.outputs += 1
        if not out.timer:
            state.claims[out.causation] = None
        _apply(state, out)
    return state


def _apply(state: Restored, out: Published) -> None:
    data = out.data
    match out.type:
        case schemas.SESSION_CREATED:
            session = Session(
                id=UUID(data["session_id"]),
                customer_id=UUID(data["customer_id"]),
                payment_id=data["payment_id"],
                session_type=data["session_type"],
                status=Status.WAITING,
                created_at=_time(data["created_at"]),
                expires_at=_time(data["expires_at"]),
                created_event_id=out.id,
            )
            state.sessions[session.id] = session
            _paid(state, out, Kind.CREATED, session.id)
        case schemas.SESSION_REJECTED:
            _paid(state, out, Kind.REJECTED, UUID(data["active_session_id"]))
        case schemas.SESSION_ACCEPTED:
            _change(
                state,
                data,
                status=Status.LIVE,
                mechanic_id=UUID(data["mechanic_id"]),
                accepted_at=_time(data["accepted_at"]),
                accepted_event_id=out.id,
            )
        case schemas.SESSION_CANCELLED:
            at = _time(data["cancelled_at"])
            _change(state, data, status=Status.CANCELLED, closed_at=at, close_reason=Reason.EXPIRED)
        case schemas.SESSION_COMPLETED:
            at, reason = _time(data["completed_at"]), Reason(data["reason"])
            _change(state, data, status=Status.COMPLETED, closed_at=at, close_reason=reason)
        case _:  # an acceptance refused changes nothing
            pass


def _paid(state: Restored, out: Published, outcome: Kind, session_id: UUID) -> None:
    customer = UUID(out.data["customer_id"])
    state.customers[customer] = None
    payment_id = out.data["payment_id"]
    state.payments[payment_id] = PaymentRecord(
        payment_id, customer, out.causation[1], outcome, session_id
    )


def _change(state: Restored, data: dict[str, object], **changes: object) -> None:
    session_id = UUID(str(data["session_id"]))
    session = state.sessions.get(session_id)
    if session is None:
        raise Inconsistent(f"session {session_id} changes before any session.created for it")
    state.sessions[session_id] = session._replace(**changes)  # type: ignore[arg-type]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
