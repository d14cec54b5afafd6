"""What a restore brings back from the input topics when the database that parked it is gone:
the consumed payments and acceptances no output names, in arrival order; ends are counted."""

from __future__ import annotations

from uuid import uuid4

import schemas
from service.core.batch import PaymentRecord
from service.core.outcomes import Kind
from service.core.parking import key_of
from service.reprocess.replay_order import InputRecord
from service.reprocess.restore_state import Restored
from service.reprocess.without_outcome import NO_OUTCOME, without_outcome
from tests.unit.core.builders import (
    ALICE,
    BOB,
    T0,
    acceptance,
    ended,
    minutes,
    payment,
    session_of,
    waiting,
)


def record(event: schemas.InputEvent, timestamp: int, partition: str, offset: int) -> InputRecord:
    return InputRecord(event, timestamp, partition, offset)


def test_consumed_payments_and_acceptances_that_no_output_names_come_back_in_arrival_order() -> (
    None
):
    decided = payment("pay-a", ALICE)
    state = Restored()
    state.claims[key_of(decided)] = None
    state.payments["pay-a"] = PaymentRecord(
        "pay-a", ALICE, decided.id, Kind.CREATED, session_of("pay-a")
    )
    state.sessions[session_of("pay-a")] = waiting("pay-a", ALICE)
    lost = payment("pay-b", BOB, at=T0 + minutes(2))
    same_payment_again = payment("pay-a", ALICE, event_id="another-event")
    in_time = acceptance(session_of("pay-a"), at=T0 + minutes(1))
    nobody_s = acceptance(uuid4(), at=T0 + minutes(1))
    payments = [
        record(decided, 1, "payments:0", 0),
        record(same_payment_again, 2, "payments:0", 1),
        record(lost, 30, "payments:0", 2),
    ]
    acceptances = [
        record(in_time, 10, "acceptances:0", 0),
        record(nobody_s, 11, "acceptances:0", 1),
    ]
    ends = [record(ended(session_of("pay-a"), at=T0 + minutes(3)), 40, "ends:0", 0)]
    copy = [record(lost, 50, "payments:1", 0)]

    found = without_outcome([payments, acceptances, ends, copy], state)

    assert [(p.event_id, p.customer_id) for p in found.events] == [
        (in_time.id, ALICE),
        (nobody_s.id, None),
        (lost.id, BOB),
    ]
    assert found.ends == 1
    assert {p.reason for p in found.events} == {NO_OUTCOME}
    assert found.events[2].event() == lost
