"""The trace context an input record carries: a `traceparent` Kafka header, or else the
CloudEvents distributed-tracing extension attribute `traceparent` (in a structured event's JSON,
or as the `ce_traceparent` header in binary mode).

The decoder ignores extension attributes (its validation of the rest is unchanged), so the
attribute is read here, and only from records that contain its name at all: a substring test
on the raw bytes, so records without one cost no second parse.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from service.core import traceparent

_HEADER = traceparent.HEADER
_ATTRIBUTE = b'"traceparent"'
_BINARY_ATTRIBUTE = "ce_" + traceparent.HEADER  # the attribute as a binary-mode header


def of_record(headers: Sequence[tuple[str, bytes | None]], value: bytes) -> str | None:
    """The record's valid traceparent, the header winning over the attribute; None if none.

    The attribute is `traceparent` in a structured event's JSON, or its binary-mode header
    `ce_traceparent`."""
    for key, raw in headers:
        if raw is not None and key in (_HEADER, _BINARY_ATTRIBUTE):
            try:
                found = traceparent.parse(raw.decode("ascii").strip())
            except UnicodeDecodeError:
                found = None
            if found is not None:
                return found
    if _ATTRIBUTE not in value:
        return None
    try:
        attribute = orjson.loads(value).get(_HEADER)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return traceparent.parse(attribute.strip()) if isinstance(attribute, str) else None


def headers_for(trace: str | None) -> list[tuple[str, bytes]]:
    """The Kafka headers an output row's trace context becomes."""
    return [] if trace is None else [(_HEADER, trace.encode("ascii"))]
