"""Decided output events, encoded once, as the outbox stores them."""

from __future__ import annotations

import schemas
from service.core.decide import Emitted
from service.core.ports import OutboxRow


def outbox_row(emitted: Emitted) -> OutboxRow:
    # Straight from the decided parts: the bytes `schemas.encode(schemas.output_event(...))`
    # would write (a property test holds them equal), without an envelope model per event.
    value = schemas.encode_output(
        emitted.data, id=emitted.id, time=emitted.time, causation_id=emitted.causation_id
    )
    return OutboxRow(emitted.id, emitted.key.encode(), value)
