"""Bytes in, events out: the one decode entry point of the hot path, and `decode_output`.

Both content modes of the CloudEvents Kafka protocol binding are read (`schemas.content_modes`).
The happy path of structured mode is a single pass of pydantic-core's JSON parser straight into
the topic's model; what was wrong with a message that fails is worked out afterwards
(`schemas.decode_errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from pydantic import ValidationError
from pydantic_core import from_json, to_json

from schemas.content_modes import (
    BINARY_ATTRIBUTE_HEADERS,
    CONTENT_TYPE_HEADER,
    HEADER_OF,
    SPECVERSION_HEADER,
    Headers,
    is_json_media_type,
    names_binary_mode,
)
from schemas.decode_errors import (
    REQUIRED_ATTRIBUTES,
    DecodeError,
    DecodeErrorKind,
    classify,
    describe_errors,
    not_json,
    quote,
)
from schemas.inputs import INPUT_EVENT_CLASSES, InputEvent
from schemas.outputs import OUTPUT_EVENT_ADAPTER, OutputEvent

MAX_EVENT_BYTES: Final = 1_048_576


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
        if headers and names_binary_mode(headers):
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
            raise classify(value, self._topic_types[topic], topic, error) from error

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
            raise DecodeError(DecodeErrorKind.UNKNOWN_TYPE, f"unknown type {quote(event_type)}")
        if event_type != expected:
            raise DecodeError(
                DecodeErrorKind.WRONG_TOPIC,
                f"type {quote(event_type)} is not expected on topic {quote(topic)}",
            )
        content_type = attributes.get("datacontenttype")
        if content_type is not None and not is_json_media_type(content_type):
            raise DecodeError(
                DecodeErrorKind.INVALID,
                f"invalid {expected}: {CONTENT_TYPE_HEADER}: the data must be JSON "
                f"(application/json), got {quote(content_type)}",
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
            raise not_json(
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
                f"invalid {expected}: {describe_errors(errors, names=HEADER_OF)}",
            ) from error


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
                    f"not a CloudEvent: header {quote(name)} appears more than once",
                )
            attributes[attribute] = raw.decode() if raw else ""
    except UnicodeDecodeError as bad:
        raise DecodeError(
            DecodeErrorKind.NOT_UTF8,
            f"not UTF-8: header {quote(name)}: {bad.reason} at offset {bad.start}",
        ) from None
    get = attributes.get
    if get("specversion") == "1.0" and get("id") and get("source") and get("type"):
        return attributes
    problems = []
    for attribute in REQUIRED_ATTRIBUTES:
        header = HEADER_OF[attribute]
        if attribute not in attributes:
            problems.append(f"missing required header {quote(header)}")
        elif not attributes[attribute]:
            problems.append(f"header {quote(header)} must be a non-empty string")
    specversion = attributes.get("specversion")
    if specversion and specversion != "1.0":
        problems.append(f"unsupported {SPECVERSION_HEADER} {quote(specversion)}, expected '1.0'")
    if problems:
        raise DecodeError(
            DecodeErrorKind.NOT_CLOUDEVENT, "not a CloudEvent: " + "; ".join(problems)
        )
    return attributes


def decode_output(value: bytes) -> OutputEvent:
    """Parses an event of `sessions.events`; raises pydantic.ValidationError.

    Strict (unknown attributes and fields are refused): it checks what this service writes. A
    subscriber that must survive new fields should read with a tolerant model of its own.
    """
    return OUTPUT_EVENT_ADAPTER.validate_json(value)
