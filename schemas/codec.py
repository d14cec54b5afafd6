"""Bytes in, events out, and back: the one decode entry point of the hot path, and `encode`.

Both content modes of the CloudEvents Kafka protocol binding are read: *structured* (the value is
the whole event as JSON, `application/cloudevents+json`) and *binary* (the attributes are `ce_*`
headers, the value is `data` itself). The happy path of structured mode is a single pass of
pydantic-core's JSON parser straight into the topic's model. Finding out *what* was wrong
(UTF-8? JSON? CloudEvent? type?) costs extra work, and it is only done once a message has
already failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails, from_json, to_json

from schemas.inputs import INPUT_EVENT_CLASSES, InputEvent
from schemas.limits import IDENTIFIER_ERROR, PATTERN_MEANINGS, explain_identifier
from schemas.outputs import OUTPUT_EVENT_ADAPTER, OutputEvent

MAX_EVENT_BYTES: Final = 1_048_576
# The reason becomes a Kafka header: keep it one bounded line.
MAX_REASON_CHARS: Final = 1000
_QUOTED_CHARS: Final = 80
# An integer with more bits is described, not printed (its digits could fill the reason).
_SHOWN_INT_BITS: Final = 128
_REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")

# The CloudEvents Kafka protocol binding. Header names are matched as the binding spells them,
# in lower case (Kafka's header names are case-sensitive); header values are UTF-8 text.
CE_HEADER_PREFIX: Final = "ce_"
CONTENT_TYPE_HEADER: Final = "content-type"
_SPECVERSION_HEADER: Final = "ce_specversion"
_CLOUDEVENTS_MEDIA_TYPE: Final = b"application/cloudevents"
# The attributes read from binary-mode headers, by header. `datacontenttype` travels as the
# `content-type` header; other `ce_*` headers (extensions) are ignored like unknown attributes
# in structured mode, and `ce_data` never stands in for the value.
BINARY_ATTRIBUTE_HEADERS: Final = {
    "ce_specversion": "specversion",
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_time": "time",
    "ce_subject": "subject",
    "ce_dataschema": "dataschema",
    CONTENT_TYPE_HEADER: "datacontenttype",
}
# Where a binary-mode reason names an attribute, it names the header that carried it.
_HEADER_OF: Final = {attribute: header for header, attribute in BINARY_ATTRIBUTE_HEADERS.items()}

Headers = Sequence[tuple[str, bytes | None]]
# pydantic's own message names the Python class ("a valid dictionary or instance of X").
_NOT_AN_OBJECT_ERRORS: Final = frozenset({"model_type", "dict_type", "model_attributes_type"})


class DecodeErrorKind(StrEnum):
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_CLOUDEVENT = "not_cloudevent"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    INVALID = "invalid"


class DecodeError(Exception):
    """An input message that cannot be decoded or validated; it belongs on the DLQ."""

    def __init__(self, kind: DecodeErrorKind, reason: str) -> None:
        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class Decoder:
    """Decodes the input topics' messages, each topic carrying exactly one event type."""

    def __init__(
        self, topic_types: Mapping[str, str], *, max_event_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        """`topic_types`: topic name -> the event type expected on it (topics are configurable).

        Raises ValueError when a topic is mapped to something that is not an input event type.
        """
        unknown = {t: v for t, v in topic_types.items() if v not in INPUT_EVENT_CLASSES}
        if unknown:
            raise ValueError(f"not input event types: {unknown!r}")
        self._max_event_bytes = max_event_bytes
        self._topic_types = dict(topic_types)
        # The validator's bound method itself: no TypeAdapter or classmethod frame per message.
        self._validate: dict[str, Callable[[bytes], InputEvent]] = {
            topic: INPUT_EVENT_CLASSES[event_type].__pydantic_validator__.validate_json
            for topic, event_type in topic_types.items()
        }

    def decode(self, value: bytes, topic: str, headers: Headers = ()) -> InputEvent:
        """Decodes a message of `topic` in either content mode; `headers` are the Kafka
        message's (name, value) pairs.

        Binary mode when there is a `ce_specversion` header and no `content-type` naming a
        CloudEvents format (`application/cloudevents...`: structured mode, as the binding says);
        structured mode otherwise. Raises DecodeError (a bad message: send it to the DLQ), or
        ValueError for a topic this decoder was not configured with (a bug or a
        misconfiguration: do not DLQ it)."""
        if headers and _is_binary_mode(headers):
            return self._decode_binary(value, topic, headers)
        if len(value) > self._max_event_bytes:
            raise DecodeError(
                DecodeErrorKind.TOO_LARGE,
                f"too large: {len(value)} bytes, the limit is {self._max_event_bytes}",
            )
        try:
            validate = self._validate[topic]
        except KeyError:
            raise ValueError(f"no event type configured for topic {topic!r}") from None
        try:
            return validate(value)
        except ValidationError as error:
            raise _classify(value, self._topic_types[topic], topic, error) from error

    def _decode_binary(self, value: bytes | None, topic: str, headers: Headers) -> InputEvent:
        value = value or b""
        if len(value) > self._max_event_bytes:
            raise DecodeError(
                DecodeErrorKind.TOO_LARGE,
                f"too large: a value of {len(value)} bytes, the limit is {self._max_event_bytes}",
            )
        try:
            validate = self._validate[topic]
        except KeyError:
            raise ValueError(f"no event type configured for topic {topic!r}") from None
        expected = self._topic_types[topic]
        attributes = _binary_attributes(headers)
        event_type = attributes["type"]
        if event_type not in INPUT_EVENT_CLASSES:
            raise DecodeError(DecodeErrorKind.UNKNOWN_TYPE, f"unknown type {_quote(event_type)}")
        if event_type != expected:
            raise DecodeError(
                DecodeErrorKind.WRONG_TOPIC,
                f"type {_quote(event_type)} is not expected on topic {_quote(topic)}",
            )
        content_type = attributes.get("datacontenttype")
        if content_type is not None and not _is_json_media_type(content_type):
            raise DecodeError(
                DecodeErrorKind.INVALID,
                f"invalid {expected}: {CONTENT_TYPE_HEADER}: the data must be JSON "
                f"(application/json), got {_quote(content_type)}",
            )
        if not value:
            raise DecodeError(
                DecodeErrorKind.NOT_JSON, "not JSON: the message value (the event's data) is empty"
            )
        # The value must be one JSON value before it is spliced into the document below: text
        # such as `{}, "id": "x"` would otherwise smuggle in attributes of its own.
        try:
            from_json(value)
        except ValueError as error:
            raise _not_json(
                value, str(error), what="the message value (the event's data)"
            ) from error
        # The attributes and the data in one JSON document: the very same model, constraints
        # and error locations as structured mode, so both modes decode to equal events.
        document = b"".join((to_json(attributes)[:-1], b',"data":', value, b"}"))
        try:
            return validate(document)
        except ValidationError as error:
            errors = error.errors(include_url=False)
            raise DecodeError(
                DecodeErrorKind.INVALID,
                f"invalid {expected}: {describe_errors(errors, names=_HEADER_OF)}",
            ) from error


def _is_binary_mode(headers: Headers) -> bool:
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
        elif name == _SPECVERSION_HEADER:
            binary = True
    return binary


def _binary_attributes(headers: Headers) -> dict[str, str]:
    """The attributes carried by binary-mode headers, as text; raises DecodeError for a header
    that is missing, repeated, empty, not UTF-8, or an unsupported specversion."""
    attributes: dict[str, str] = {}
    try:
        for name, raw in headers:
            attribute = BINARY_ATTRIBUTE_HEADERS.get(name)
            if attribute is None:
                continue
            if attribute in attributes:
                # Kafka allows a header twice; which of two ids is the event's would be a guess.
                raise DecodeError(
                    DecodeErrorKind.NOT_CLOUDEVENT,
                    f"not a CloudEvent: header {_quote(name)} appears more than once",
                )
            attributes[attribute] = raw.decode() if raw else ""
    except UnicodeDecodeError as bad:
        raise DecodeError(
            DecodeErrorKind.NOT_UTF8,
            f"not UTF-8: header {_quote(name)}: {bad.reason} at offset {bad.start}",
        ) from None
    get = attributes.get
    if get("specversion") == "1.0" and get("id") and get("source") and get("type"):
        return attributes
    problems = []
    for attribute in _REQUIRED_ATTRIBUTES:
        header = _HEADER_OF[attribute]
        if attribute not in attributes:
            problems.append(f"missing required header {_quote(header)}")
        elif not attributes[attribute]:
            problems.append(f"header {_quote(header)} must be a non-empty string")
    specversion = attributes.get("specversion")
    if specversion and specversion != "1.0":
        problems.append(f"unsupported {_SPECVERSION_HEADER} {_quote(specversion)}, expected '1.0'")
    if problems:
        raise DecodeError(
            DecodeErrorKind.NOT_CLOUDEVENT, "not a CloudEvent: " + "; ".join(problems)
        )
    return attributes


def _is_json_media_type(content_type: str) -> bool:
    """`application/json`, `text/json` or any `+json` type, parameters such as charset aside."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def _classify(value: bytes, expected: str, topic: str, error: ValidationError) -> DecodeError:
    errors = error.errors(include_url=False)
    if errors[0]["type"] == "json_invalid":
        detail = str(errors[0].get("ctx", {}).get("error", errors[0]["msg"]))
        return _not_json(value, detail)
    # The bytes parsed once already, so they parse again; this time into plain Python values.
    event = from_json(value)
    problems = _cloudevent_problems(event)
    if problems:
        return DecodeError(
            DecodeErrorKind.NOT_CLOUDEVENT, "not a CloudEvent: " + "; ".join(problems)
        )
    event_type = event["type"]
    if event_type not in INPUT_EVENT_CLASSES:
        return DecodeError(DecodeErrorKind.UNKNOWN_TYPE, f"unknown type {_quote(event_type)}")
    if event_type != expected:
        return DecodeError(
            DecodeErrorKind.WRONG_TOPIC,
            f"type {_quote(event_type)} is not expected on topic {_quote(topic)}",
        )
    return DecodeError(DecodeErrorKind.INVALID, f"invalid {expected}: {describe_errors(errors)}")


def _not_json(value: bytes, detail: str, *, what: str = "the message") -> DecodeError:
    # jiter reports bad UTF-8 as a JSON error ("invalid unicode code point", "expected value");
    # decoding says which byte is wrong.
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeError(
            DecodeErrorKind.NOT_UTF8, f"not UTF-8: {bad.reason} at offset {bad.start}"
        )
    if not value:
        # A tombstone (null value) arrives here as b"".
        return DecodeError(DecodeErrorKind.NOT_JSON, f"not JSON: {what} is empty")
    if detail.startswith("recursion limit exceeded"):
        # jiter stops at a fixed depth (about 200) instead of exhausting the stack.
        detail = f"nested too deeply to parse ({detail})"
    return DecodeError(DecodeErrorKind.NOT_JSON, f"not JSON: {detail}")


def _cloudevent_problems(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return [f"the JSON value is {_json_kind(event)}, not an object"]
    problems = []
    for name in _REQUIRED_ATTRIBUTES:
        if name not in event:
            problems.append(f"missing required attribute {_quote(name)}")
        elif not isinstance(event[name], str) or not event[name]:
            problems.append(f"attribute {_quote(name)} must be a non-empty string")
    specversion = event.get("specversion")
    if isinstance(specversion, str) and specversion and specversion != "1.0":
        problems.append(f"unsupported specversion {_quote(specversion)}, expected '1.0'")
    return problems


def describe_errors(errors: list[ErrorDetails], *, names: Mapping[str, str] | None = None) -> str:
    """`data.amount_cents: Input should be greater than 0, got 0; time: Field required`.

    Each error names the field and, when it is a string or a number, the value (a bounded
    prefix of it). `names` renames top-level fields (binary mode: `id` -> `ce_id`).
    """
    parts = []
    for error in errors:
        loc = error["loc"]
        if names and loc and isinstance(loc[0], str) and loc[0] in names:
            loc = (names[loc[0]], *loc[1:])
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        parts.append(f"{path.lstrip('.') or '(event)'}: {_message(error)}")
    return "; ".join(parts)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in _NOT_AN_OBJECT_ERRORS:
        return "Input should be a JSON object"
    value = error.get("input")
    if kind == IDENTIFIER_ERROR:
        message = explain_identifier(value, error.get("ctx", {})["max_bytes"])
    elif kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        message = PATTERN_MEANINGS.get(pattern, error["msg"]) if pattern else error["msg"]
    else:
        message = error["msg"]
    if kind == "missing":
        return message
    shown = _shown(value)
    return message if shown is None else f"{message}, got {shown}"


def _shown(value: Any) -> str | None:
    """A refused value as a reason quotes it: bounded, one line; None for objects and arrays."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > _SHOWN_INT_BITS:
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "null"
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _quote(text: str) -> str:
    # Echo only a bounded prefix of producer-supplied text into a header.
    shown = text if len(text) <= _QUOTED_CHARS else text[:_QUOTED_CHARS] + "..."
    return repr(shown)


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
    return _binary_headers(attributes), event.data.__pydantic_serializer__.to_json(event.data)


def binary_from_structured(value: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """`encode_binary` of the event that `encode` wrote as `value`, without validating it again:
    for publishing stored structured bytes in binary mode. Raises ValueError when `value` is
    not a JSON object with a `data` member."""
    event = from_json(value)
    if not isinstance(event, dict) or "data" not in event:
        raise ValueError("not a structured-mode CloudEvent")
    data = event.pop("data")
    return _binary_headers(event), orjson.dumps(data)


def is_binary_mode(headers: Headers) -> bool:
    """Whether a Kafka message with these headers is a CloudEvent in binary content mode (a
    `ce_specversion` header, no `content-type` naming a CloudEvents format), as `Decoder.decode`
    tells the modes apart."""
    return bool(headers) and _is_binary_mode(headers)


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


def _binary_headers(attributes: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    return [
        (
            CONTENT_TYPE_HEADER if name == "datacontenttype" else CE_HEADER_PREFIX + name,
            str(text).encode(),
        )
        for name, text in attributes.items()
        if text is not None
    ]


def decode_output(value: bytes) -> OutputEvent:
    """Parses an event of `sessions.events`; raises pydantic.ValidationError.

    Strict (unknown attributes and fields are refused): it checks what this service writes. A
    subscriber that must survive new fields should read with a tolerant model of its own.
    """
    return OUTPUT_EVENT_ADAPTER.validate_json(value)
