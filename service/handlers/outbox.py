"""Decided output events, encoded once, as the outbox stores them."""

from __future__ import annotations

import schemas
from service.core.decide import Emitted
from service.core.ports import OutboxRow


def outbox_row(emitted: Emitted) -> OutboxRow:
    # Straight from the decided record: the bytes `schemas.encode(schemas.output_event(...))`
    # writes for its model (a property test holds them equal), with no model built per event.
    value = schemas.encode_fields(
        emitted.fields,
        id=emitted.id,
        time=emitted.time,
        causation_id=emitted.causation_id,
        subject=emitted.subject,
    )
    return OutboxRow(emitted.id, emitted.key.encode(), value)
