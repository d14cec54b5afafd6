"""Read-only lookups for support staff (`fulfillment sessions show`): a customer's sessions,
one session, one payment's outcome. Not part of the `Store` port: no handler decides on them."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from service.adapters.postgres import sql
from service.adapters.postgres.pool import Connection
from service.adapters.postgres.store import session_of
from service.core.sessions import Session


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment_id: str
    customer_id: UUID
    event_id: str
    outcome: str  # created or rejected
    session_id: UUID  # the session it made, or (rejected) would have made


async def sessions_of_customer(conn: Connection, customer_id: UUID, limit: int) -> list[Session]:
    """Newest first."""
    return [session_of(r) for r in await conn.fetch(sql.SESSIONS_OF_CUSTOMER, customer_id, limit)]


async def session_by_id(conn: Connection, session_id: UUID) -> Session | None:
    row = await conn.fetchrow(sql.SESSION_BY_ID, session_id)
    return None if row is None else session_of(row)


async def payment_by_id(conn: Connection, payment_id: str) -> PaymentOutcome | None:
    row = await conn.fetchrow(sql.PAYMENT_BY_ID, payment_id)
    return None if row is None else PaymentOutcome(**dict(row))


async def customer_of_parked_payment(conn: Connection, payment_id: str) -> UUID | None:
    """The customer of a payment that is parked, not decided yet."""
    found: UUID | None = await conn.fetchval(sql.PARKED_PAYMENT, payment_id)
    return found
