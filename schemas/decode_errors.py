"""What was wrong with an input message, said in one bounded line: the dead letter's reason.

Finding out *what* was wrong (UTF-8? JSON? CloudEvent? type? which field?) costs extra work, so
it is only done once a message has already failed to decode.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails, from_json

from schemas.inputs import INPUT_EVENT_CLASSES
from schemas.limits import IDENTIFIER_ERROR, PATTERN_MEANINGS, explain_identifier

# The reason becomes a Kafka header: keep it one bounded line.
MAX_REASON_CHARS: Final = 1000
_QUOTED_CHARS: Final = 80
# An integer with more bits is described, not printed (its digits could fill the reason).
_SHOWN_INT_BITS: Final = 128
REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")
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


def classify(value: bytes, expected: str, topic: str, error: ValidationError) -> DecodeError:
    """The DecodeError of a structured-mode `value` that failed validation as `expected`."""
    errors = error.errors(include_url=False)
    if errors[0]["type"] == "json_invalid":
        detail = str(errors[0].get("ctx", {}).get("error", errors[0]["msg"]))
        return not_json(value, detail)
    # The bytes parsed once already, so they parse again; this time into plain Python values.
    event = from_json(value)
    problems = _cloudevent_problems(event)
    if problems:
        return DecodeError(
            DecodeErrorKind.NOT_CLOUDEVENT, "not a CloudEvent: " + "; ".join(problems)
        )
    event_type = event["type"]
    if event_type not in INPUT_EVENT_CLASSES:
        return DecodeError(DecodeErrorKind.UNKNOWN_TYPE, f"unknown type {quote(event_type)}")
    if event_type != expected:
        return DecodeError(
            DecodeErrorKind.WRONG_TOPIC,
            f"type {quote(event_type)} is not expected on topic {quote(topic)}",
        )
    return DecodeError(DecodeErrorKind.INVALID, f"invalid {expected}: {describe_errors(errors)}")


def not_json(value: bytes, detail: str, *, what: str = "the message") -> DecodeError:
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
    for name in REQUIRED_ATTRIBUTES:
        if name not in event:
            problems.append(f"missing required attribute {quote(name)}")
        elif not isinstance(event[name], str) or not event[name]:
            problems.append(f"attribute {quote(name)} must be a non-empty string")
    specversion = event.get("specversion")
    if isinstance(specversion, str) and specversion and specversion != "1.0":
        problems.append(f"unsupported specversion {quote(specversion)}, expected '1.0'")
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
        return quote(value)
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


def quote(text: str) -> str:
    # Echo only a bounded prefix of producer-supplied text into a header.
    shown = text if len(text) <= _QUOTED_CHARS else text[:_QUOTED_CHARS] + "..."
    return repr(shown)
