"""The checks against the final database: every published decision known to it, the replayed
state equal to its rows, and its own invariants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from tests.proof.history import History, Violation, distinct
from tests.proof.replay import Replayed

KNOWN = "every published decision is known to the database"
INVARIANTS = "the database's own invariants"
TIMER_SOURCE = "session-fulfillment"


def _by(rows: list[Mapping[str, Any]], column: str) -> dict[str, Mapping[str, Any]]:
    return {str(row[column]): row for row in rows}


def decisions_known(history: History, replayed: Replayed) -> list[Violation]:
    db = history.database
    sessions, payments = _by(db.sessions, "id"), _by(db.payments, "payment_id")
    found = []

    def fail(why: str, key: str | None) -> None:
        found.append(Violation(KNOWN, why, key))

    for record in distinct(history.published):
        data, what = record.data, f"{record.type} {record.id}"
        session = sessions.get(str(data.get("session_id")))
        if record.type in ("session.created", "session.rejected"):
            payment = payments.get(str(data.get("payment_id")))
            outcome = record.type.removeprefix("session.")
            named = data.get("session_id", data.get("active_session_id"))
            if payment is None or payment["outcome"] != outcome:
                fail(
                    f"{what}: the payments table says {payment and payment['outcome']}", record.key
                )
            elif str(payment["session_id"]) != str(named):
                fail(
                    f"{what}: the payments table names session {payment['session_id']}", record.key
                )
        if record.type in (
            "session.created",
            "session.accepted",
            "session.cancelled",
            "session.completed",
        ):
            if session is None:
                fail(f"{what}: no sessions row {data.get('session_id')}", record.key)
            elif record.type == "session.accepted" and str(session["mechanic_id"]) != str(
                data.get("mechanic_id")
            ):
                fail(f"{what}: the row's mechanic is {session['mechanic_id']}", record.key)
        cause = record.cause
        if cause is not None and cause[0] != TIMER_SOURCE and cause not in db.processed:
            fail(f"{what}: its cause {cause} is not in processed_events", record.key)
    for session_id, state in sorted(replayed.sessions.items()):
        row = sessions.get(session_id)
        if row is not None and row["status"] != state.status:
            fail(
                f"session {session_id}: published history leaves it {state.status}, "
                f"the row says {row['status']}",
                str(row["customer_id"]),
            )
    for session_id, row in sorted(sessions.items()):
        if session_id not in replayed.sessions:
            fail(
                f"session {session_id} is in the database but was never published",
                str(row["customer_id"]),
            )
    return found


def invariants(history: History) -> list[Violation]:
    db = history.database
    found = []
    active = Counter(
        str(r["customer_id"]) for r in db.sessions if r["status"] in ("waiting", "live")
    )
    for customer, count in sorted(active.items()):
        if count > 1:
            found.append(Violation(INVARIANTS, f"{count} active sessions", customer))
    for row in db.sessions:
        if row["status"] == "live" and (row["mechanic_id"] is None or row["accepted_at"] is None):
            found.append(Violation(INVARIANTS, f"live session {row['id']} without a mechanic"))
        closed = row["status"] in ("completed", "cancelled")
        if closed != (row["closed_at"] is not None):
            found.append(Violation(INVARIANTS, f"session {row['id']} {row['status']} closed_at"))
    sessions = _by(db.sessions, "id")
    for row in db.payments:
        if row["outcome"] == "created" and str(row["session_id"]) not in sessions:
            found.append(Violation(INVARIANTS, f"payment {row['payment_id']} created no row"))
    if db.outbox_rows:
        found.append(Violation(INVARIANTS, f"{db.outbox_rows} outbox rows never published"))
    if db.parked_events:
        found.append(Violation(INVARIANTS, f"{db.parked_events} events still parked"))
    return found
