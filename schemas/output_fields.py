"""The output events' `data` as plain frozen records, for the hot path: what the decisions
build and the outbox encodes (`encode_fields`), one dataclass per output model, with the
model's fields in the model's order.

The pydantic models in `outputs` stay the contract: `to_model` gives a record's model, and a
property test holds `encode_fields` to the very bytes `encode(output_event(model))` writes.
Building a record is a plain constructor (no validation per event): the decisions only ever
fill them from values that were validated on the way in. Times may carry any offset; the
encoder writes them in UTC, as the model does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import orjson

from schemas.envelope import DATA_CONTENT_TYPE, SOURCE, SPECVERSION
from schemas.event_types import (
    SESSION_ACCEPTANCE_REJECTED,
    SESSION_ACCEPTED,
    SESSION_CANCELLED,
    SESSION_COMPLETED,
    SESSION_CREATED,
    SESSION_REJECTED,
    SessionType,
)
from schemas.outputs import (
    OutputEventData,
    SessionAcceptanceRejected,
    SessionAccepted,
    SessionCancelled,
    SessionCompleted,
    SessionCreated,
    SessionRejected,
)


def utc(value: datetime) -> datetime:
    """`value` in UTC, as the wire spells every time. Raises ValueError for a naive time."""
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CreatedFields:
    session_id: UUID
    customer_id: UUID
    payment_id: str
    session_type: SessionType
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RejectedFields:
    payment_id: str
    customer_id: UUID
    active_session_id: UUID
    reason: str = "active_session"


@dataclass(frozen=True, slots=True)
class CancelledFields:
    session_id: UUID
    customer_id: UUID
    payment_id: str
    cancelled_at: datetime
    reason: str = "expired"


@dataclass(frozen=True, slots=True)
class AcceptedFields:
    session_id: UUID
    customer_id: UUID
    mechanic_id: UUID
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class AcceptanceRejectedFields:
    session_id: UUID
    mechanic_id: UUID
    reason: str


@dataclass(frozen=True, slots=True)
class CompletedFields:
    session_id: UUID
    customer_id: UUID
    reason: str
    completed_at: datetime


OutputFields = (
    CreatedFields
    | RejectedFields
    | CancelledFields
    | AcceptedFields
    | AcceptanceRejectedFields
    | CompletedFields
)

# record -> (its model, its event type)
_CONTRACT: Final[Mapping[type[Any], tuple[type[OutputEventData], str]]] = {
    CreatedFields: (SessionCreated, SESSION_CREATED),
    RejectedFields: (SessionRejected, SESSION_REJECTED),
    CancelledFields: (SessionCancelled, SESSION_CANCELLED),
    AcceptedFields: (SessionAccepted, SESSION_ACCEPTED),
    AcceptanceRejectedFields: (SessionAcceptanceRejected, SESSION_ACCEPTANCE_REJECTED),
    CompletedFields: (SessionCompleted, SESSION_COMPLETED),
}
RECORD_OF: Final = {model: record for record, (model, _) in _CONTRACT.items()}
# The order the model writes a record's fields in (its declaration order), and its times.
_ORDER: Final = {record: tuple(model.model_fields) for record, (model, _) in _CONTRACT.items()}
_TIMES: Final = {
    record: tuple(f.name for f in fields(record) if f.type == "datetime") for record in _CONTRACT
}


def to_model(record: OutputFields) -> OutputEventData:
    """The contract's model of `record` (validated: raises what pydantic raises)."""
    model = _CONTRACT[type(record)][0]
    return model(**{name: getattr(record, name) for name in _ORDER[type(record)]})


def fields_of(model: OutputEventData) -> OutputFields:
    """The record of a model."""
    record: Any = RECORD_OF[type(model)]
    made: OutputFields = record(**{f.name: getattr(model, f.name) for f in fields(record)})
    return made


def event_type_of(record: OutputFields) -> str:
    return _CONTRACT[type(record)][1]


def encode_fields(
    record: OutputFields,
    *,
    id: str,
    time: datetime,
    causation_id: str,
    subject: str | None,
    causation_source: str = SOURCE,
) -> bytes:
    """The bytes `schemas.encode` writes for the event of `record`: `id` already derived (see
    `output_event_id_text`), `subject` the session id (None for `session.rejected`). Raises
    ValueError for a naive time.

    One orjson call, whose spelling of text, UUIDs, enums and UTC times (`Z`, six fraction
    digits only when not zero) is pydantic-core's; the attributes in the envelope model's order.
    """
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id,
        "source": SOURCE,
        "type": _CONTRACT[type(record)][1],
    }
    if subject is not None:
        event["subject"] = subject
    event["time"] = utc(time)
    event["datacontenttype"] = DATA_CONTENT_TYPE
    event["causationid"] = causation_id
    event["causationsource"] = causation_source
    data = {name: getattr(record, name) for name in _ORDER[type(record)]}
    for name in _TIMES[type(record)]:
        data[name] = utc(data[name])
    event["data"] = data
    return orjson.dumps(event, default=_text_of_uuid, option=orjson.OPT_UTC_Z)


def _text_of_uuid(value: object) -> str:
    # orjson writes uuid.UUID itself but not its subclasses, such as the one asyncpg returns
    # for the sessions it loads: their canonical text is the same.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of an output event")
