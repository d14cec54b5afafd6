"""Input events, sessions and the handlers on the in-memory store: no Kafka, no PostgreSQL.

Events are built through the contract models (`schemas.*Event.model_validate`), so a test never
feeds the core something the decoder would refuse. Sessions are built by the core itself
(`decide_payment`, `decide_acceptance`), never by hand, so they are the ones it would store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import schemas
from service.adapters.memory_store import MemoryDatabase
from service.core.batch import BatchResult, PaymentRecord, Snapshot, decide_batch
from service.core.decide import Emitted, decide_acceptance, decide_payment
from service.core.sessions import Policy, Session, Status
from service.handlers.consume import handle_batch
from service.handlers.outbox import outbox_row
from service.handlers.sweep import sweep_customers

T = TypeVar("T")

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
TTL = timedelta(minutes=15)
MAX_LIVE = timedelta(hours=4)
POLICY = Policy(request_ttl=TTL, max_live=MAX_LIVE)
TICK = timedelta(microseconds=1)

ALICE = UUID("6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41")
BOB = UUID("0b7e3c52-5d1a-4f7e-8c11-93a0d2e6b7f4")
CAROL = UUID("c4a1e9d2-7b3f-4e85-a6d0-1f2e3d4c5b6a")
MECHANIC = UUID("a3f0c2d4-1e5b-4c7a-9d8e-2b1c0f9e8d7c")
OTHER_MECHANIC = UUID("5e6d7c8b-9a0f-4e1d-8c2b-3a4f5e6d7c8b")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def session_of(payment_id: str) -> UUID:
    return schemas.session_id_for_payment(payment_id)


def payment(
    payment_id: str,
    customer: UUID = ALICE,
    *,
    at: datetime = T0,
    event_id: str | None = None,
    source: str = "payments",
    session_type: str = "video",
) -> schemas.PaymentCompletedEvent:
    return schemas.PaymentCompletedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": event_id or f"pay|{payment_id}",
            "source": source,
            "type": schemas.PAYMENT_COMPLETED,
            "time": at,
            "data": {
                "payment_id": payment_id,
                "customer_id": str(customer),
                "amount_cents": 2999,
                "currency": "USD",
                "session_type": session_type,
            },
        }
    )


def acceptance(
    session_id: UUID,
    mechanic: UUID = MECHANIC,
    *,
    at: datetime,
    event_id: str | None = None,
    source: str = "mechanic-app",
) -> schemas.MechanicAcceptedEvent:
    return schemas.MechanicAcceptedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": event_id or f"acc|{session_id}|{mechanic}|{at.isoformat()}",
            "source": source,
            "type": schemas.MECHANIC_ACCEPTED,
            "time": at,
            "data": {"session_id": str(session_id), "mechanic_id": str(mechanic)},
        }
    )


def ended(
    session_id: UUID,
    *,
    at: datetime,
    event_id: str | None = None,
    source: str = "session-runtime",
) -> schemas.SessionEndedEvent:
    return schemas.SessionEndedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": event_id or f"end|{session_id}|{at.isoformat()}",
            "source": source,
            "type": schemas.SESSION_ENDED,
            "time": at,
            "data": {"session_id": str(session_id)},
        }
    )


def waiting(payment_id: str, customer: UUID = ALICE, *, at: datetime = T0) -> Session:
    """The waiting session the core creates for this payment."""
    (session,) = decide_payment(payment(payment_id, customer, at=at), None, policy=POLICY).changed
    return session


def live(
    payment_id: str, customer: UUID = ALICE, *, at: datetime = T0, accepted_at: datetime
) -> Session:
    """The live session the core makes of it when `MECHANIC` accepts at `accepted_at`."""
    target = waiting(payment_id, customer, at=at)
    (session,) = decide_acceptance(acceptance(target.id, at=accepted_at), target).changed
    return session


def snapshot(*sessions: Session, decided: Iterable[str] = ()) -> Snapshot:
    return Snapshot(sessions={s.id: s for s in sessions}, decided_payments=frozenset(decided))


def decide(*events: schemas.InputEvent, state: Snapshot | None = None) -> BatchResult:
    return decide_batch(state or Snapshot(), events, policy=POLICY)


def types(result: BatchResult) -> list[str]:
    return [e.type for e in result.emitted]


def only(result: BatchResult, type_: str) -> Emitted:
    (found,) = [e for e in result.emitted if e.type == type_]
    return found


def row(emitted: Emitted) -> tuple[str, bytes, bytes]:
    """What the handler writes to the outbox for this decision: (id, key, value)."""
    written = outbox_row(emitted)
    return written.event_id, written.key, written.value


class InMemoryHandlers:
    """The real handlers (`handle_batch`, `sweep_customers`) on the in-memory store, driven
    synchronously: the store is held to PostgreSQL's contract by tests/contract/test_store.py."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.policy = policy
        self.db = MemoryDatabase()
        self.store = self.db.store()
        self._loop = asyncio.new_event_loop()
        self.published: list[Emitted] = []  # what went to the outbox, decided, in order

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)

    def handle(self, events: Sequence[schemas.InputEvent]) -> BatchResult:
        result = self._run(handle_batch(self.store, events, policy=self.policy))
        self.check_one_active_per_customer()
        self.published.extend(result.emitted)
        return result

    def sweep(self, now: datetime) -> BatchResult:
        due = self._run(
            self.store.due_customers(now=now, max_live=self.policy.max_live, limit=10**6)
        )
        result = self._run(sweep_customers(self.store, due, now=now, policy=self.policy))
        self.published.extend(result.emitted)
        return result

    @property
    def sessions(self) -> dict[UUID, Session]:
        return self.db.tables.sessions

    @property
    def payments(self) -> dict[str, PaymentRecord]:
        return self.db.tables.payments

    def check_one_active_per_customer(self) -> None:
        active = [s.customer_id for s in self.sessions.values() if s.active]
        assert len(active) == len(set(active)), "sessions_one_active_per_customer violated"

    def status(self, session_id: UUID) -> Status:
        return self.sessions[session_id].status
