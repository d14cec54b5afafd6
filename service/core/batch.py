"""A batch of events folded over the state they touch, in arrival order: still pure.

The database adapter reads a `Snapshot` under the customers' locks, `decide_batch` says what
happens, and the adapter writes the `BatchResult` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, assert_never
from uuid import UUID

import schemas
from service.core.decide import (
    Emitted,
    Outcome,
    decide_acceptance,
    decide_ended,
    decide_payment,
    expire,
)
from service.core.outcomes import Kind, Verdict
from service.core.owners import customer_of
from service.core.parking import ParkedEvent
from service.core.sessions import Policy, Session


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The touched customers' active sessions, the sessions events name, decided payment ids,
    and which of the customers have parked events (read with the rest, under their locks)."""

    sessions: Mapping[UUID, Session] = field(default_factory=dict)
    decided_payments: frozenset[str] = frozenset()
    parked_customers: frozenset[UUID] = frozenset()


class PaymentRecord(NamedTuple):
    """A payment's one outcome, as the payments table stores it (a named tuple: see
    `Verdict`)."""

    payment_id: str
    customer_id: UUID
    event_id: str
    outcome: Kind  # created or rejected: the payment's one outcome, ever
    session_id: UUID


class Decision(NamedTuple):
    """What one input event (or one closing by the sweeper) came to, for logs and metrics
    (a named tuple: see `Verdict`)."""

    event_id: str
    event_type: str
    outcome: Verdict
    customer_id: UUID | None
    session_id: UUID | None
    payment_id: str | None = None
    purged: tuple[UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    inserted: tuple[Session, ...]
    updated: tuple[Session, ...]
    payments: tuple[PaymentRecord, ...]
    emitted: tuple[Emitted, ...]
    decisions: tuple[Decision, ...]
    # Set aside behind a poison event instead of decided (service/core/parking.py).
    parked: tuple[ParkedEvent, ...] = ()


class _Ledger:
    """Working state of one fold; never escapes `decide_batch` or `sweep`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.sessions = dict(snapshot.sessions)
        self.known = frozenset(self.sessions)
        self.active = {s.customer_id: s.id for s in self.sessions.values() if s.active}
        self.decided = set(snapshot.decided_payments)
        self.touched: dict[UUID, None] = {}
        self.payments: list[PaymentRecord] = []
        self.emitted: list[Emitted] = []
        self.decisions: list[Decision] = []

    def put(self, session: Session) -> None:
        self.sessions[session.id] = session
        self.touched[session.id] = None
        if session.active:
            self.active[session.customer_id] = session.id
        elif self.active.get(session.customer_id) == session.id:
            del self.active[session.customer_id]

    def purge(self, customer_id: UUID, now: datetime, policy: Policy) -> tuple[UUID, ...]:
        session_id = self.active.get(customer_id)
        if session_id is None:
            return ()
        closed = expire(self.sessions[session_id], now=now, policy=policy)
        if closed is None:
            return ()
        self.put(closed[0])
        self.emitted.append(closed[1])
        return (session_id,)

    def owner(self, session_id: UUID) -> UUID | None:
        session = self.sessions.get(session_id)
        return None if session is None else session.customer_id

    def apply(self, outcome: Outcome) -> None:
        for session in outcome.changed:
            self.put(session)
        self.emitted.extend(outcome.emitted)

    def result(self) -> BatchResult:
        changed = [self.sessions[i] for i in self.touched]
        return BatchResult(
            inserted=tuple(s for s in changed if s.id not in self.known),
            updated=tuple(s for s in changed if s.id in self.known),
            payments=tuple(self.payments),
            emitted=tuple(self.emitted),
            decisions=tuple(self.decisions),
        )


def decide_batch(
    snapshot: Snapshot, events: Sequence[schemas.InputEvent], *, policy: Policy
) -> BatchResult:
    """Decide `events` (fresh, in arrival order) one after another, each seeing the last."""
    ledger = _Ledger(snapshot)
    for event in events:
        customer = customer_of(event, ledger.owner)
        purged = () if customer is None else ledger.purge(customer, event.time, policy)
        payment_id: str | None = None
        match event:
            case schemas.PaymentCompletedEvent():
                payment_id = event.data.payment_id
                outcome = _decide_payment(ledger, event, policy)
            case schemas.MechanicAcceptedEvent():
                outcome = decide_acceptance(event, ledger.sessions.get(event.data.session_id))
            case schemas.SessionEndedEvent():
                outcome = decide_ended(event, ledger.sessions.get(event.data.session_id))
            case _:
                assert_never(event)
        ledger.apply(outcome)
        ledger.decisions.append(
            Decision(
                event_id=event.id,
                event_type=event.type,
                outcome=outcome.verdict,
                customer_id=customer,
                session_id=outcome.session_id,
                payment_id=payment_id,
                purged=purged,
            )
        )
    return ledger.result()


def _decide_payment(
    ledger: _Ledger, event: schemas.PaymentCompletedEvent, policy: Policy
) -> Outcome:
    payment = event.data
    if payment.payment_id in ledger.decided:
        return Outcome(verdict=Verdict(Kind.DUPLICATE_PAYMENT))
    active_id = ledger.active.get(payment.customer_id)
    active = None if active_id is None else ledger.sessions[active_id]
    outcome = decide_payment(event, active, policy=policy)
    assert outcome.session_id is not None
    ledger.decided.add(payment.payment_id)
    ledger.payments.append(
        PaymentRecord(
            payment.payment_id,
            payment.customer_id,
            event.id,
            outcome.verdict.kind,
            outcome.session_id,
        )
    )
    return outcome


def sweep(
    sessions: Iterable[Session], *, now: datetime, policy: Policy, run_id: str
) -> BatchResult:
    """Close every given active session whose deadline has passed by the sweeper's `now`.

    `now` only says which deadlines are due; what is decided (ids, times, payloads) comes from
    the sessions alone, exactly as the purge inside a customer's transaction would decide it.
    """
    ledger = _Ledger(Snapshot(sessions={s.id: s for s in sessions}))
    for customer_id in list(ledger.active):
        for session_id in ledger.purge(customer_id, now, policy):
            closed = ledger.sessions[session_id]
            ledger.decisions.append(
                Decision(
                    event_id=run_id,
                    event_type="sweep",
                    outcome=Verdict(Kind(closed.status), closed.close_reason),
                    customer_id=customer_id,
                    session_id=session_id,
                    purged=(session_id,),
                )
            )
    return ledger.result()
