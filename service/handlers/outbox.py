"""Decided output events, encoded once, as the outbox stores them."""

from __future__ import annotations

import schemas
from service.core.decide import Emitted
from service.core.ports import OutboxRow


def outbox_row(emitted: Emitted) -> OutboxRow:
    event = schemas.output_event(
        emitted.data,
        causation_id=emitted.causation_id,
        time=emitted.time,
        id=emitted.id,
        causation_source=emitted.causation_source,
    )
    return OutboxRow(emitted.id, emitted.key.encode(), schemas.encode(event))
