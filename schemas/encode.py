"""Events out as bytes: `encode` (structured content mode) and `encode_binary`."""

from __future__ import annotations

from schemas.content_modes import binary_headers
from schemas.outputs import OutputEvent


def encode(event: OutputEvent) -> bytes:
    """Compact UTF-8 JSON; key order is the models' field order, times are UTC with 'Z', so an
    event always encodes to the same bytes."""
    return event.__pydantic_serializer__.to_json(event)


def encode_binary(event: OutputEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    """The event in binary content mode: (headers, value), deterministic like `encode`.

    Every attribute but `data` becomes a header `ce_<attribute>` (`ce_specversion`, `ce_id`,
    `ce_source`, `ce_type`, `ce_subject` when there is one, `ce_time`, `ce_causationid`,
    `ce_causationsource`), except
    `datacontenttype`, which becomes `content-type`; values are UTF-8 text spelled as in
    structured mode (times in UTC with 'Z'). The value is `data` as compact JSON, the same bytes
    as the `data` member of `encode(event)`.
    """
    attributes = event.__pydantic_serializer__.to_python(event, mode="json", exclude={"data"})
    return binary_headers(attributes), event.data.__pydantic_serializer__.to_json(event.data)
