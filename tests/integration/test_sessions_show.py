"""`fulfillment sessions show` against the real PostgreSQL, for each state a customer can be in:
waiting, live, completed, cancelled, a rejected payment, parked, and unknown."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from service.adapters import postgres
from service.entrypoints import output
from service.entrypoints.sessions import show_sessions
from service.handlers.consume import handle_batch
from tests.unit.core.builders import (
    MECHANIC,
    POLICY,
    T0,
    acceptance,
    ended,
    minutes,
    payment,
    session_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def show(settings: Any, capsys: pytest.CaptureFixture[str], **which: Any) -> Any:
    capsys.readouterr()
    code = await show_sessions(settings, as_json=True, **which)
    return code, json.loads(capsys.readouterr().out)


async def test_sessions_show_answers_why_a_customer_cannot_book_in_every_state(
    make_settings: Any, pool: postgres.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    waiting, live, done, expired, parked = (uuid4() for _ in range(5))
    async with postgres.store_of(pool) as store:
        await handle_batch(
            store,
            [
                payment("w-1", waiting),
                payment("w-2", waiting, at=T0 + minutes(1)),  # rejected: w-1 is waiting
                payment("l-1", live),
                acceptance(session_of("l-1"), at=T0 + minutes(2)),
                payment("d-1", done),
                acceptance(session_of("d-1"), at=T0 + minutes(2)),
                ended(session_of("d-1"), at=T0 + minutes(30)),
                payment("x-1", expired),
                payment("x-2", expired, at=T0 + minutes(20)),  # x-1 expired first: cancelled
            ],
            policy=POLICY,
        )
        await handle_batch(
            store, [payment("p-1", parked)], policy=POLICY, poison={("payments", "pay|p-1"): "boom"}
        )

    code, answer = await show(settings, capsys, customer=waiting)
    assert code == output.OK
    assert answer["blocked_by"]["kind"] == "active_session"
    assert answer["blocked_by"]["status"] == "waiting"
    assert [s["status"] for s in answer["sessions"]] == ["waiting"]

    code, answer = await show(settings, capsys, payment="w-2")
    assert answer["payment"]["outcome"] == "rejected"
    assert answer["customer_id"] == str(waiting)

    code, answer = await show(settings, capsys, session=session_of("l-1"))
    (session,) = answer["sessions"]
    assert session["status"] == "live" and session["mechanic_id"] == str(MECHANIC)
    assert answer["blocked_by"]["status"] == "live"

    code, answer = await show(settings, capsys, customer=done)
    (session,) = answer["sessions"]
    assert (session["status"], session["reason"]) == ("completed", "ended")
    assert answer["blocked_by"] is None

    code, answer = await show(settings, capsys, customer=expired)
    assert [(s["status"], s["reason"]) for s in answer["sessions"]] == [
        ("waiting", None),
        ("cancelled", "expired"),
    ]

    code, answer = await show(settings, capsys, payment="p-1")
    assert answer["payment"]["outcome"] == "parked"
    assert answer["blocked_by"] == {"kind": "parked", "events": 1, "reason": "boom"}

    code, answer = await show(settings, capsys, customer=UUID(int=1))
    assert code == output.OK and answer["sessions"] == [] and answer["blocked_by"] is None
    code, answer = await show(settings, capsys, payment="never-seen")
    assert code == output.NOT_FOUND and answer["found"] is False

    capsys.readouterr()
    assert await show_sessions(settings, customer=live) == output.OK
    text = capsys.readouterr().out
    assert "cannot book: session" in text and "live" in text
