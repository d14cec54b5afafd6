"""The simulated stream: repeatable, varied enough to reach every rule, and on the contract."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

import orjson
import pytest

import schemas
from service.core.batch import Snapshot, decide_batch
from service.core.sessions import Policy
from service.simulation.backdating import SWEEPER_GRACE
from service.simulation.payments import payments_only
from service.simulation.stream import (
    BACKDATED,
    CANCELLED_BY,
    Kind,
    Message,
    Simulation,
)

T0 = datetime(2030, 1, 7, 9, 30, tzinfo=UTC)
TTL = timedelta(seconds=30)
MAX_LIVE = timedelta(hours=4)
Payment = schemas.PaymentCompletedEvent
DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())


def stream(n: int = 600, *, seed: int = 7, salt: str = "", customers: int = 10) -> list[Message]:
    sim = Simulation(customers, seed, request_ttl=TTL, salt=salt)
    return list(islice(sim.messages(T0, rate=2), n))


def decoded(messages: list[Message]) -> list[schemas.InputEvent]:
    return [DECODER.decode(m.value, m.topic) for m in messages if m.valid]


def first_copies(events: list[schemas.InputEvent]) -> list[schemas.InputEvent]:
    """What deduplication lets through: each (source, id) once."""
    seen: set[tuple[str, str]] = set()
    first = []
    for event in events:
        if (event.source, event.id) not in seen:
            seen.add((event.source, event.id))
            first.append(event)
    return first


def test_the_same_seed_gives_the_same_stream_byte_for_byte() -> None:
    assert stream(seed=3) == stream(seed=3)
    assert stream(seed=3) != stream(seed=4)


def test_a_new_salt_changes_every_id_but_not_who_does_what_when() -> None:
    first, second = stream(salt="run 1"), stream(salt="run 2")
    assert [(m.kind, m.topic, m.time) for m in first] == [(m.kind, m.topic, m.time) for m in second]
    first_ids = {e.id for e in decoded(first)}
    assert first_ids.isdisjoint(e.id for e in decoded(second))


def test_a_long_enough_run_has_every_kind_of_message() -> None:
    assert set(Counter(m.kind for m in stream())) == set(Kind)


def test_every_valid_message_decodes_with_the_contract_decoder() -> None:
    messages = stream()
    assert len(decoded(messages)) == sum(m.valid for m in messages)


def test_every_malformed_message_is_refused_by_the_decoder() -> None:
    malformed = [m for m in stream() if not m.valid]
    assert malformed
    for message in malformed:
        with pytest.raises(schemas.DecodeError):
            DECODER.decode(message.value, message.topic)


def test_event_times_advance_one_slot_per_message_from_the_start() -> None:
    messages = stream(200)
    fresh = [(i, m) for i, m in enumerate(messages) if m.kind not in {Kind.REDELIVERY, *BACKDATED}]
    assert len(fresh) > 150
    assert all(m.time == T0 + timedelta(seconds=i / 2) for i, m in fresh)


def test_the_first_two_payments_are_backdated_one_for_the_purge_and_one_for_the_sweeper() -> None:
    first, second = stream(2)

    assert (first.kind, second.kind) == (Kind.EXPIRING_PAYMENT, Kind.STALE_PAYMENT)
    assert CANCELLED_BY[first.kind] == "purge" and CANCELLED_BY[second.kind] == "sweeper"


def test_a_stale_payment_is_past_its_ttl_when_it_is_sent() -> None:
    messages = stream()
    stale = [(i, m) for i, m in enumerate(messages) if m.kind is Kind.STALE_PAYMENT]
    assert len(stale) > 1
    for slot, message in stale:
        assert message.time < T0 + timedelta(seconds=slot / 2) - TTL


def test_a_stale_payment_s_customer_pays_nothing_more_until_the_sweeper_has_been() -> None:
    messages = stream(1200)
    slots = [(T0 + timedelta(seconds=i / 2), m) for i, m in enumerate(messages)]
    payments = [
        (sent, m, DECODER.decode(m.value, m.topic))
        for sent, m in slots
        if m.valid and m.topic == schemas.DEFAULT_TOPICS.payments_completed
    ]
    stale = [(sent, e) for sent, m, e in payments if m.kind is Kind.STALE_PAYMENT]
    assert len(stale) > 2
    for sent, event in stale:
        assert isinstance(event, Payment)
        again = [
            later
            for later, m, e in payments
            if isinstance(e, Payment)
            and e.data.customer_id == event.data.customer_id
            and m.kind is not Kind.REDELIVERY
            and sent < later < sent + SWEEPER_GRACE
        ]
        assert again == [], (sent, again)


def test_an_expiring_payment_s_session_expires_when_its_customer_pays_again() -> None:
    messages = stream()
    expiring = [m for m in messages if m.kind is Kind.EXPIRING_PAYMENT]
    assert len(expiring) > 1
    events = [(m, DECODER.decode(m.value, m.topic)) for m in messages if m.valid]
    for at, (message, event) in enumerate(events):
        if message.kind is not Kind.EXPIRING_PAYMENT:
            continue
        assert isinstance(event, Payment)
        expires = message.time + TTL
        later = [
            e.time
            for m, e in events[at + 1 :]
            if isinstance(e, Payment)
            and e.data.customer_id == event.data.customer_id
            and m.kind is Kind.PAYMENT
        ]
        # The customer pays again at the expiry (in the first free slot, moments after), before
        # the sweeper, which goes by the wall clock, is likely to have looked.
        assert any(expires <= t < expires + timedelta(seconds=2) for t in later), (expires, later)


def test_a_simulated_stream_decided_in_order_cancels_by_the_purge_from_its_first_minute() -> None:
    sim = Simulation(10, 7, request_ttl=timedelta(minutes=15))
    minute = list(islice(sim.messages(T0, rate=20), 1200))
    events = first_copies(decoded(minute))
    result = decide_batch(
        Snapshot(), events, policy=Policy(request_ttl=timedelta(minutes=15), max_live=MAX_LIVE)
    )
    purged = [d for d in result.decisions if d.purged]
    assert purged, "no stale session was cancelled by a purge in the first minute"


def test_redeliveries_repeat_an_earlier_message_byte_for_byte() -> None:
    messages = stream()
    sent: set[bytes] = set()
    redelivered = 0
    for message in messages:
        if message.kind is Kind.REDELIVERY:
            assert message.value in sent
            redelivered += 1
        sent.add(message.value)
    assert redelivered


def test_a_retried_payment_keeps_its_payment_id_under_a_new_event_id() -> None:
    payments = [e for e in decoded(stream()) if isinstance(e, schemas.PaymentCompletedEvent)]
    by_payment_id: dict[str, set[str]] = {}
    for payment in payments:
        by_payment_id.setdefault(payment.data.payment_id, set()).add(payment.id)
    assert any(len(ids) > 1 for ids in by_payment_id.values())


def test_late_acceptances_come_at_or_after_the_session_expires() -> None:
    events = decoded(stream())
    created_at: dict[uuid.UUID, datetime] = {}
    for e in events:  # the first payment of a payment id creates its session, not a retry
        if isinstance(e, schemas.PaymentCompletedEvent):
            created_at.setdefault(schemas.session_id_for_payment(e.data.payment_id), e.time)
    late = [m for m in stream() if m.kind is Kind.LATE_ACCEPTANCE]
    assert late
    for message in late:
        accepted = DECODER.decode(message.value, message.topic)
        assert isinstance(accepted, schemas.MechanicAcceptedEvent)
        assert accepted.time >= created_at[accepted.data.session_id] + TTL


def test_messages_are_keyed_by_customer_for_payments_and_by_session_otherwise() -> None:
    for message, event in zip((m for m in stream() if m.valid), decoded(stream()), strict=True):
        if isinstance(event, schemas.PaymentCompletedEvent):
            assert message.key == str(event.data.customer_id).encode()
        else:
            assert message.key == str(event.data.session_id).encode()


def test_decided_in_order_the_stream_reaches_every_outcome() -> None:
    seen: set[tuple[str, str]] = set()
    unique = []
    for event in decoded(stream()):
        if (event.source, event.id) not in seen:
            seen.add((event.source, event.id))
            unique.append(event)
    result = decide_batch(
        Snapshot(),  # an empty database
        unique,
        policy=Policy(request_ttl=TTL, max_live=timedelta(hours=4)),
    )
    outcomes = {d.outcome.label for d in result.decisions}
    assert {
        "created",
        "rejected",
        "duplicate_payment",
        "accepted",
        "completed",
        "acceptance_rejected:already_accepted",
        "acceptance_rejected:expired",
        "acceptance_rejected:unknown_session",
    } <= outcomes
    assert schemas.SESSION_CANCELLED in {e.type for e in result.emitted}


def test_payments_only_gives_n_distinct_payments_keyed_by_their_customers() -> None:
    messages = payments_only(400, 100, T0, 5, topic="payments.bench")
    assert messages == payments_only(400, 100, T0, 5, topic="payments.bench")
    events = [DECODER.decode(m.value, "payments.completed") for m in messages]
    payments = [e for e in events if isinstance(e, schemas.PaymentCompletedEvent)]
    assert len(payments) == 400
    assert len({p.data.payment_id for p in payments}) == 400
    assert len({p.data.customer_id for p in payments}) <= 100
    assert {m.topic for m in messages} == {"payments.bench"}
    for message, payment in zip(messages, payments, strict=True):
        assert message.key == str(payment.data.customer_id).encode()
        assert message.time == payment.time
    assert payments[0].time == T0
    assert orjson.loads(messages[-1].value)["time"] == "2030-01-07T09:30:00.399000Z"
