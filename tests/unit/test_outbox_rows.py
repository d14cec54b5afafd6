"""An outbox row holds the very bytes the contract's model encodes, whatever UUID type the
store handed the decision (asyncpg returns its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

import schemas
from service.adapters.postgres import sql
from service.core.batch import PaymentRecord
from service.core.decide import expire
from service.core.ports import OutboxRow
from service.core.sessions import Policy, Session, Status
from service.handlers.outbox import outbox_row

POLICY = Policy(request_ttl=timedelta(minutes=15), max_live=timedelta(hours=4))


def test_a_session_loaded_by_asyncpg_is_published_as_the_model_encodes_it() -> None:
    created = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    session = Session(
        id=AsyncpgUUID(str(UUID(int=7))),
        customer_id=AsyncpgUUID(str(UUID(int=8))),
        payment_id="pi_1",
        session_type="chat",
        status=Status.WAITING,
        created_at=created,
        expires_at=created + POLICY.request_ttl,
        created_event_id=str(UUID(int=9)),
    )
    closed = expire(session, now=created + timedelta(hours=1), policy=POLICY)
    assert closed is not None
    emitted = closed[1]

    row = outbox_row(emitted)

    model = schemas.output_event(
        emitted.data, causation_id=emitted.causation_id, time=emitted.time, id=emitted.id
    )
    assert row.value == schemas.encode(model)
    assert row.key == str(UUID(int=8)).encode()


def test_payment_and_outbox_records_are_in_the_column_order_their_copy_names() -> None:
    # The store hands them to COPY as they are, so field order is column order.
    assert PaymentRecord._fields == sql.PAYMENT_COPY_COLUMNS
    assert OutboxRow._fields == sql.OUTBOX_COPY_COLUMNS
