"""The proof's workload: the same seed makes the same stream, every input type is in it, and a
mechanic accepts only a session it has seen created."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

import orjson

import schemas
from tests.proof.workload import Outgoing, Workload

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def first(workload: Workload, n: int) -> list[Outgoing]:
    return list(islice(workload.stream(START), n))


def test_the_same_seed_makes_the_same_stream_and_another_seed_another() -> None:
    a = first(Workload(7, schemas.DEFAULT_TOPICS), 500)
    b = first(Workload(7, schemas.DEFAULT_TOPICS), 500)
    c = first(Workload(8, schemas.DEFAULT_TOPICS), 500)
    assert [(o.topic, o.value, o.headers) for o in a] == [(o.topic, o.value, o.headers) for o in b]
    assert [o.value for o in a] != [o.value for o in c]


def test_the_stream_has_every_input_type_in_both_content_modes() -> None:
    workload = Workload(3, schemas.DEFAULT_TOPICS)
    sent: list[Outgoing] = []
    for outgoing in islice(workload.stream(START), 3000):
        sent.append(outgoing)
        if (
            outgoing.event is not None
            and outgoing.topic == schemas.DEFAULT_TOPICS.payments_completed
        ):
            # The service would create a session for every payment: read it back at once.
            session = schemas.session_id_for_payment(outgoing.event["data"]["payment_id"])
            expires = datetime.fromisoformat(outgoing.event["time"]) + timedelta(minutes=15)
            created = {
                "type": schemas.SESSION_CREATED,
                "data": {"session_id": str(session), "expires_at": expires.isoformat()},
            }
            workload.saw(orjson.dumps(created), START + timedelta(hours=1))
    kinds = Counter(o.kind for o in sent)
    for kind in (
        "payment",
        "payment_retry",
        "redelivery",
        "acceptance",
        "second_acceptance",
        "late_acceptance",
        "unknown_acceptance",
        "not_json",
        "bad_field",
        "broken_binary",
        "stale_payment",
        "expiring_payment",
    ):
        assert kinds[kind] > 0, kind
    binary = [o for o in sent if any(k == "ce_specversion" for k, _ in o.headers)]
    assert any(o.malformed for o in binary) and any(not o.malformed for o in binary)


def test_an_acceptance_waits_until_its_session_is_seen_created() -> None:
    workload = Workload(5, schemas.DEFAULT_TOPICS)
    sent = first(workload, 400)
    accepted = schemas.DEFAULT_TOPICS.mechanics_accepted
    # Nothing was read back: only acceptances of sessions nobody paid for went out.
    assert {o.kind for o in sent if o.topic == accepted} == {"unknown_acceptance"}
    waiting = next(gate for gate in workload.held if gate.startswith("created:"))
    session = waiting.removeprefix("created:")
    created = {
        "type": schemas.SESSION_CREATED,
        "data": {"session_id": session, "expires_at": "2099-01-01T00:00:00Z"},
    }
    workload.saw(orjson.dumps(created), START)
    released = first(workload, 1)
    assert released[0].topic == accepted and released[0].key == session.encode()
    assert waiting not in workload.held
