"""Decided output events, encoded once, as the outbox stores them."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

import schemas
from schemas.output_fields import encode_fields
from service.core.batch import BatchResult
from service.core.decide import Emitted
from service.core.ports import OutboxRow

# Input event id -> its W3C traceparent, for the events of a batch that came with one.
Traces = Mapping[str, str]
NO_TRACES: Traces = {}


def outbox_row(emitted: Emitted, traceparent: str | None = None) -> OutboxRow:
    # Straight from the decided record: the bytes `schemas.encode(schemas.output_event(...))`
    # writes for its model (a property test holds them equal), with no model built per event.
    value = encode_fields(
        emitted.fields,
        id=emitted.id,
        time=emitted.time,
        causation_id=emitted.causation_id,
        subject=emitted.subject,
        causation_source=emitted.causation_source,
    )
    return OutboxRow(emitted.id, emitted.key.encode(), value, traceparent)


def outbox_rows(result: BatchResult, traces: Traces = NO_TRACES) -> list[OutboxRow]:
    """Each output carries the trace of the input event whose decision made it: its causation,
    or, for a waiting session the purge cancelled right before deciding an event, that event
    (the cancellation's causation is the session's own first payment, decided long before)."""
    if not traces:
        return [outbox_row(e) for e in result.emitted]
    purged_by = {
        session_id: traces[d.event_id]
        for d in result.decisions
        if d.purged and d.event_id in traces
        for session_id in d.purged
    }
    rows = []
    for emitted in result.emitted:
        closed = _expired_session(emitted)
        trace = None if closed is None else purged_by.get(closed)
        rows.append(outbox_row(emitted, trace or traces.get(emitted.causation_id)))
    return rows


def _expired_session(emitted: Emitted) -> UUID | None:
    """The session an expiry closes (what a purge or the sweeper emits, never an event's own
    outcome); None for any other output."""
    data = emitted.data
    if isinstance(data, schemas.SessionCancelled) or (
        isinstance(data, schemas.SessionCompleted) and data.reason == "timed_out"
    ):
        return data.session_id
    return None
