"""The hot path's encoder: an output event's bytes straight from its parts, with no envelope
model built per event. `encode(output_event(...))` stays the definition of those bytes; a
property test holds the two to the same bytes for every output type."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import orjson

from schemas.envelope import DATA_CONTENT_TYPE, SOURCE, SPECVERSION, OutputData
from schemas.outputs import _CLASS_BY_DATA, OutputEventData

# Everything before `id`, and between `type` and what follows it, is fixed per type; the
# attributes come in the envelope model's field order. `session.rejected` has no subject.
_HEAD: Final = f'{{"specversion":"{SPECVERSION}","id":'.encode()
_TYPE_PARTS: Final[Mapping[type[OutputData], bytes]] = {
    data_class: f',"source":"{SOURCE}","type":"{event_class.event_type}"'.encode()
    for data_class, event_class in _CLASS_BY_DATA.items()
}
_TIME: Final = b',"time":"'
_CAUSATION: Final = f'Z","datacontenttype":"{DATA_CONTENT_TYPE}","causationid":'.encode()


def encode_output(data: OutputEventData, *, id: str, time: datetime, causation_id: str) -> bytes:
    """The bytes `schemas.encode` writes for the event carrying `data` with this `id` (already
    derived: see `output_event_id_text`). Raises ValueError for a naive `time`."""
    if time.tzinfo is UTC:
        utc = time
    elif time.utcoffset() is None:
        raise ValueError(f"naive datetime {time.isoformat()}")
    else:
        utc = time.astimezone(UTC)
    subject = data.subject
    return b"".join(
        (
            _HEAD,
            orjson.dumps(id),
            _TYPE_PARTS[type(data)],
            b"" if subject is None else b',"subject":"' + subject.encode() + b'"',
            _TIME,
            # isoformat of a UTC time ends in "+00:00": the wire spells it "Z".
            utc.isoformat()[:-6].encode(),
            _CAUSATION,
            # The causation is an input event's id, any text: JSON-escaped as pydantic does.
            orjson.dumps(causation_id),
            b',"data":',
            data.__pydantic_serializer__.to_json(data),
            b"}",
        )
    )
