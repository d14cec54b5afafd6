"""A session named by an event may be committed between the handler's read of its owner and its
locks: the handler then locks the owner too and decides with everything locked, and its first
attempt leaves nothing behind (no claim that would make the event a duplicate of itself)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from service.adapters.memory_store import MemoryDatabase, MemoryStore
from service.core.outcomes import Kind
from service.handlers.consume import handle_batch
from tests.unit.core.builders import ALICE, BOB, POLICY, T0, acceptance, minutes, payment
from tests.unit.core.builders import session_of as session_for


class OwnersReadTooEarly(MemoryStore):
    """Answers `customers_of_sessions` as it would have just before the sessions committed."""

    async def customers_of_sessions(self, session_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        return {}


async def test_an_event_whose_sessions_owner_was_read_too_early_is_decided_once_all_is_locked() -> (
    None
):
    db = MemoryDatabase()
    await handle_batch(db.store(), [payment("pay-1", ALICE)], policy=POLICY)
    accepted = acceptance(session_for("pay-1"), at=T0 + minutes(1))
    result = await handle_batch(
        OwnersReadTooEarly(db), [payment("pay-2", BOB), accepted], policy=POLICY
    )
    assert [(d.event_id, d.outcome.kind) for d in result.decisions] == [
        ("pay|pay-2", Kind.CREATED),
        (accepted.id, Kind.ACCEPTED),
    ]
    assert db.tables.sessions[session_for("pay-1")].status == "live"
