"""Trace context: which traceparents are kept, where a record's comes from, and which outputs
carry it through the outbox."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given
from hypothesis import strategies as st

import schemas
from service.adapters.kafka.trace_context import headers_for, of_record
from service.adapters.memory_store import MemoryDatabase
from service.core import traceparent
from service.core.ports import OutboxRow
from service.handlers.consume import handle_batch
from service.handlers.outbox import outbox_row
from tests.unit.core.builders import ALICE, BOB, POLICY, T0, minutes, payment

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def test_a_valid_traceparent_is_kept_and_its_trace_id_read() -> None:
    assert traceparent.parse(TRACE) == TRACE
    assert traceparent.trace_id(TRACE) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_later_version_may_add_fields_but_version_00_may_not() -> None:
    assert traceparent.parse("01" + TRACE[2:] + "-extra") is not None
    assert traceparent.parse(TRACE + "-extra") is None


def test_invalid_traceparents_are_ignored() -> None:
    for bad in [
        "",
        "garbage",
        TRACE.upper(),
        "ff" + TRACE[2:],
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        TRACE[:-1],
    ]:
        assert traceparent.parse(bad) is None, bad


def _hex(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789abcdef", min_size=length, max_size=length)


@given(trace=_hex(32), parent=_hex(16), flags=_hex(2))
def test_any_well_formed_version_00_traceparent_is_kept_with_its_trace_id(
    trace: str, parent: str, flags: str
) -> None:
    value = f"00-{trace}-{parent}-{flags}"
    valid = set(trace) != {"0"} and set(parent) != {"0"}

    assert traceparent.parse(value) == (value if valid else None)
    if valid:
        assert traceparent.trace_id(value) == trace


def _body(**extra: object) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": "e1", **extra})


def test_a_record_s_traceparent_header_is_read() -> None:
    assert of_record([("traceparent", TRACE.encode())], _body()) == TRACE


def test_the_cloudevents_attribute_is_read_when_there_is_no_header() -> None:
    assert of_record([], _body(traceparent=TRACE)) == TRACE


def test_the_header_wins_over_the_attribute() -> None:
    assert of_record([("traceparent", TRACE.encode())], _body(traceparent=OTHER)) == TRACE


def test_an_invalid_header_falls_back_to_the_attribute_and_bad_ones_to_none() -> None:
    assert of_record([("traceparent", b"\xff")], _body(traceparent=OTHER)) == OTHER
    assert of_record([("traceparent", b"nope")], _body()) is None
    assert of_record([], _body(traceparent=42)) is None
    assert of_record([], b'["traceparent"]') is None
    assert of_record([], b'{"traceparent": ') is None


def test_an_output_row_s_trace_becomes_one_header_and_none_no_header() -> None:
    assert headers_for(TRACE) == [("traceparent", TRACE.encode())]
    assert headers_for(None) == []


def _outbox(events: list[schemas.InputEvent], traces: dict[str, str]) -> list[tuple[str, str]]:
    db = MemoryDatabase()
    store = db.store()
    asyncio.run(handle_batch(store, events, policy=POLICY, traces=traces))
    return [
        (schemas.decode_output(row.value).type, row.traceparent or "") for row in db.tables.outbox
    ]


def test_every_output_of_a_traced_payment_carries_its_trace() -> None:
    first = payment("pay-1", ALICE)
    repeat = payment("pay-2", ALICE, at=T0 + minutes(1))
    untraced = payment("pay-3", BOB)

    rows = _outbox([first, repeat, untraced], {first.id: TRACE, repeat.id: OTHER})

    assert rows == [
        (schemas.SESSION_CREATED, TRACE),
        (schemas.SESSION_REJECTED, OTHER),
        (schemas.SESSION_CREATED, ""),
    ]


def test_a_cancellation_by_the_purge_carries_the_trace_of_the_payment_that_purged() -> None:
    stale = payment("pay-1", ALICE)
    repeat = payment("pay-2", ALICE, at=T0 + minutes(20))

    rows = _outbox([stale, repeat], {stale.id: OTHER, repeat.id: TRACE})

    assert rows == [
        (schemas.SESSION_CREATED, OTHER),
        (schemas.SESSION_CANCELLED, TRACE),
        (schemas.SESSION_CREATED, TRACE),
    ]


def test_the_trace_leaves_the_payload_bytes_as_they_were() -> None:
    event = payment("pay-1", ALICE)
    db = MemoryDatabase()
    asyncio.run(handle_batch(db.store(), [event], policy=POLICY, traces={event.id: TRACE}))
    traced = db.tables.outbox[0]
    plain = asyncio.run(_plain_row(event))

    assert (traced.event_id, traced.key, traced.value) == (plain.event_id, plain.key, plain.value)


async def _plain_row(event: schemas.InputEvent) -> OutboxRow:
    db = MemoryDatabase()
    result = await handle_batch(db.store(), [event], policy=POLICY)
    return outbox_row(result.emitted[0])


def test_a_binary_mode_event_s_ce_traceparent_header_is_its_attribute() -> None:
    assert of_record([("ce_traceparent", TRACE.encode())], b'{"payment_id": "p1"}') == TRACE


def test_a_header_without_a_value_is_no_trace() -> None:
    assert of_record([("traceparent", None), ("ce_id", None)], _body()) is None
