"""Which consumed inputs the changelog shows no decision for, when the database that parked
them is gone: a restore brings them back parked, so that a release decides them. Pure.

A payment or an acceptance that was decided always caused an output; one consumed (its offset
committed) without any was parked, or decided with its output lost with the database (the
outbox not yet sent). Either way deciding it once more is right: the output ids are
deterministic. An end that caused nothing cannot be told from one that was ignored (its session
was not live): ends are left out, and counted.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import schemas
from service.core.parking import ParkedEvent
from service.reprocess.replay_order import InputRecord
from service.reprocess.restore_state import Restored

NO_OUTCOME = "consumed, no outcome on sessions.events (restored from the input topics)"


@dataclass(slots=True)
class WithoutOutcome:
    events: list[ParkedEvent] = field(default_factory=list)
    ends: int = 0  # ends without an output: ignored, or parked; no way to tell


def without_outcome(partitions: Sequence[Sequence[InputRecord]], state: Restored) -> WithoutOutcome:
    """The inputs of `partitions` (each in offset order, up to what the service consumed) that
    no output of `state` names, as parked events in arrival order (records' timestamps)."""
    owners = {s.id: s.customer_id for s in state.sessions.values()}
    found = WithoutOutcome()
    seen: set[tuple[str, str]] = set()
    merged = heapq.merge(*partitions, key=lambda r: (r.timestamp, r.partition, r.offset))
    for record in merged:
        event = record.event
        key = record.identity
        if key in state.claims or key in seen:
            continue  # decided (an output names it), or a copy of one found already
        seen.add(key)
        customer: UUID | None
        match event:
            case schemas.PaymentCompletedEvent(data=payment):
                if payment.payment_id in state.payments:
                    continue  # a payment id decided under another event: a duplicate
                customer = payment.customer_id
            case schemas.MechanicAcceptedEvent():
                customer = owners.get(event.data.session_id)
            case schemas.SessionEndedEvent():
                found.ends += 1
                continue
        found.events.append(
            ParkedEvent(
                customer_id=customer,
                source=event.source,
                event_id=event.id,
                type=event.type,
                body=event.model_dump_json(by_alias=True, exclude_none=True).encode(),
                reason=NO_OUTCOME,
            )
        )
    return found
