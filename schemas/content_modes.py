"""The two content modes of the CloudEvents Kafka protocol binding: *structured* (the value is
the whole event as JSON, `application/cloudevents+json`) and *binary* (the attributes are `ce_*`
headers, the value is `data` itself); telling them apart, and converting stored bytes between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from pydantic_core import from_json

# Header names are matched as the binding spells them, in lower case (Kafka's header names are
# case-sensitive); header values are UTF-8 text.
CE_HEADER_PREFIX: Final = "ce_"
CONTENT_TYPE_HEADER: Final = "content-type"
SPECVERSION_HEADER: Final = "ce_specversion"
_CLOUDEVENTS_MEDIA_TYPE: Final = b"application/cloudevents"
# The attributes read from binary-mode headers, by header. `datacontenttype` travels as the
# `content-type` header; other `ce_*` headers (extensions) are ignored like unknown attributes
# in structured mode, and `ce_data` never stands in for the value.
BINARY_ATTRIBUTE_HEADERS: Final = {
    SPECVERSION_HEADER: "specversion",
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_time": "time",
    "ce_subject": "subject",
    "ce_dataschema": "dataschema",
    CONTENT_TYPE_HEADER: "datacontenttype",
}
# Where a binary-mode reason names an attribute, it names the header that carried it.
HEADER_OF: Final = {attribute: header for header, attribute in BINARY_ATTRIBUTE_HEADERS.items()}

Headers = Sequence[tuple[str, bytes | None]]


def is_binary_mode(headers: Headers) -> bool:
    """Whether a Kafka message with these headers is a CloudEvent in binary content mode (a
    `ce_specversion` header, no `content-type` naming a CloudEvents format), as `Decoder.decode`
    tells the modes apart."""
    return bool(headers) and names_binary_mode(headers)


def names_binary_mode(headers: Headers) -> bool:
    """A `ce_specversion` header and no `content-type` naming a CloudEvents event format.

    On the path of every structured message that has headers, so names are compared as the
    binding spells them (lower case), without normalising each one first.
    """
    binary = False
    for name, raw in headers:
        if name == CONTENT_TYPE_HEADER:
            if (
                raw
                and (
                    raw.startswith(_CLOUDEVENTS_MEDIA_TYPE)
                    # The binding matches the media type case-insensitively.
                    or raw[: len(_CLOUDEVENTS_MEDIA_TYPE)].lower() == _CLOUDEVENTS_MEDIA_TYPE
                )
            ):
                return False
        elif name == SPECVERSION_HEADER:
            binary = True
    return binary


def is_json_media_type(content_type: str) -> bool:
    """`application/json`, `text/json` or any `+json` type, parameters such as charset aside."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def binary_from_structured(value: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """`encode_binary` of the event that `encode` wrote as `value`, without validating it again:
    for publishing stored structured bytes in binary mode. Raises ValueError when `value` is
    not a JSON object with a `data` member."""
    event = from_json(value)
    if not isinstance(event, dict) or "data" not in event:
        raise ValueError("not a structured-mode CloudEvent")
    data = event.pop("data")
    return binary_headers(event), orjson.dumps(data)


def structured_from_binary(headers: Headers, value: bytes | None) -> bytes:
    """The structured-mode bytes of an event read in binary mode: every `ce_*` header an
    attribute (extensions too), `content-type` its `datacontenttype`, in the headers' order,
    then `data`, the value. The inverse of `binary_from_structured`: an output this service
    published in binary mode reads back as the very bytes `encode` wrote. Other headers (a
    `traceparent`) are not attributes. Raises ValueError when a header is not UTF-8 or the value
    is not JSON."""
    event: dict[str, Any] = {}
    for name, raw in headers:
        if name == CONTENT_TYPE_HEADER:
            event["datacontenttype"] = (raw or b"").decode()
        elif name.startswith(CE_HEADER_PREFIX):
            event[name[len(CE_HEADER_PREFIX) :]] = (raw or b"").decode()
    event["data"] = orjson.loads(value or b"")
    return orjson.dumps(event)


def binary_headers(attributes: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The binary-mode headers of an event's attributes (all but `data`), in their order."""
    return [
        (
            CONTENT_TYPE_HEADER if name == "datacontenttype" else CE_HEADER_PREFIX + name,
            str(text).encode(),
        )
        for name, text in attributes.items()
        if text is not None
    ]
