"""`fulfillment sessions show --customer ID | --session ID | --payment ID`: the answer to "why
can't I book?". The customer's sessions (newest first) with status, times, mechanic and reason;
the payment's outcome when one was asked about; whether the customer is parked; and, first, what
stands in the way of a new booking: an active session (a new payment is rejected, and refunded,
while one is waiting or live), parked events (nothing of theirs is decided until released), or
nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from service.adapters.postgres import support
from service.config.settings import Settings
from service.core.sessions import Session
from service.entrypoints import output
from service.entrypoints.database import operator_store

SESSIONS_SHOWN = 50


async def show_sessions(
    settings: Settings,
    *,
    customer: UUID | None = None,
    session: UUID | None = None,
    payment: str | None = None,
    as_json: bool = False,
) -> int:
    async with operator_store(settings) as store:
        conn = store.conn
        answer: dict[str, Any] = {}
        if payment is not None:
            outcome = await support.payment_by_id(conn, payment)
            answer["payment"] = (
                {"payment_id": payment, "outcome": None} if outcome is None else asdict(outcome)
            )
            if outcome is not None:
                customer = outcome.customer_id
            else:
                customer = await support.customer_of_parked_payment(conn, payment)
                if customer is not None:
                    answer["payment"]["outcome"] = "parked"
        if session is not None:
            found = await support.session_by_id(conn, session)
            customer = None if found is None else found.customer_id
        if customer is None:
            what = f"payment {payment}" if payment is not None else f"session {session}"
            if as_json:
                output.emit_json(answer | {"found": False})
            else:
                print(f"no {what} is known (not decided, not parked)")
            return output.NOT_FOUND
        sessions = await support.sessions_of_customer(conn, customer, SESSIONS_SHOWN)
        parked = await store.parked_events([customer])
        answer |= {
            "customer_id": customer,
            "blocked_by": _blocked_by(sessions, len(parked), parked[0].reason if parked else None),
            "parked_events": len(parked),
            "sessions": [_session_row(s) for s in sessions],
        }
    if as_json:
        output.emit_json(answer | {"found": True})
    else:
        _print(answer)
    return output.OK


def _blocked_by(sessions: list[Session], parked: int, reason: str | None) -> dict[str, Any] | None:
    if parked:
        return {"kind": "parked", "events": parked, "reason": reason}
    active = next((s for s in sessions if s.active), None)
    if active is not None:
        return {"kind": "active_session", "session_id": active.id, "status": active.status}
    return None


def _session_row(s: Session) -> dict[str, Any]:
    return {
        "session_id": s.id,
        "status": s.status.value,
        "payment_id": s.payment_id,
        "session_type": s.session_type,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "mechanic_id": s.mechanic_id,
        "accepted_at": s.accepted_at,
        "closed_at": s.closed_at,
        "reason": None if s.close_reason is None else s.close_reason.value,
    }


def _print(answer: dict[str, Any]) -> None:
    print(f"customer {answer['customer_id']}")
    if "payment" in answer:
        p = answer["payment"]
        print(f"payment {p['payment_id']}: {p['outcome'] or 'no outcome yet'}")
    blocked = answer["blocked_by"]
    if blocked is None:
        print("can book: nothing stands in the way")
    elif blocked["kind"] == "parked":
        print(
            f"cannot book: parked, {blocked['events']} event(s) waiting for "
            f"`fulfillment parked release` ({blocked['reason']})"
        )
    else:
        print(
            f"cannot book: session {blocked['session_id']} is {blocked['status']}; "
            "a new payment is rejected until it ends"
        )
    if answer["sessions"]:
        output.table(
            answer["sessions"],
            ["session_id", "status", "created_at", "mechanic_id", "closed_at", "reason"],
        )
