"""The AsyncAPI 3.0.0 description of the service's topics, built from the models and constants."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from schemas.decode_errors import DecodeErrorKind
from schemas.dlq import (
    DLQ_ERROR_KIND,
    DLQ_ERROR_REASON,
    DLQ_FAILED_AT,
    DLQ_HEADERS,
    DLQ_ORIGINAL,
    DLQ_PLACEHOLDER,
    DLQ_PLACEHOLDER_MAX_KEY_BYTES,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from schemas.envelope import CLOUDEVENTS_CONTENT_TYPE, SOURCE, UTC_PATTERN
from schemas.event_types import (
    INPUT_TYPES,
    MECHANIC_ACCEPTED,
    OUTPUT_TYPES,
    PAYMENT_COMPLETED,
    SESSION_ACCEPTANCE_REJECTED,
    SESSION_ENDED,
)
from schemas.inputs import INPUT_EVENT_CLASSES
from schemas.outputs import OUTPUT_EVENT_CLASSES
from schemas.topics import DEFAULT_TOPICS

# Bump on every change subscribers can see: a new field, a new type, a new topic.
CONTRACT_VERSION: Final = "1.0.0"
# AsyncAPI 3.0.0 names draft-07 among the formats every tool must read; the published schemas
# are 2020-12, so they are declared as what they are.
JSON_SCHEMA_FORMAT: Final = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING_VERSION: Final = "0.5.0"

_UUID_KEY: Final = {"type": "string", "format": "uuid"}
_INPUT_KEYS: Final = {
    PAYMENT_COMPLETED: "customer_id. Producers should key by it; the service stays correct "
    "when they do not.",
    MECHANIC_ACCEPTED: "session_id",
    SESSION_ENDED: "session_id",
}
_OUTPUT_KEY: Final = "customer_id, so that events about one customer stay in decision order"
_UNKNOWN_SESSION_KEY: Final = (
    "customer_id; session_id when the session is unknown (reason unknown_session), as no "
    "customer is known then"
)
_DLQ_HEADER_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    DLQ_ERROR_REASON: {
        "type": "string",
        "description": "One line saying precisely what was wrong (DecodeError.reason)",
    },
    DLQ_ERROR_KIND: {"type": "string", "enum": [kind.value for kind in DecodeErrorKind]},
    DLQ_SOURCE_TOPIC: {"type": "string", "description": "The topic the message was read from"},
    DLQ_SOURCE_PARTITION: {"type": "string", "pattern": r"^[0-9]+$", "description": "Decimal"},
    DLQ_SOURCE_OFFSET: {"type": "string", "pattern": r"^[0-9]+$", "description": "Decimal"},
    DLQ_FAILED_AT: {"type": "string", "format": "date-time", "pattern": UTC_PATTERN},
    DLQ_ORIGINAL: {
        "type": "string",
        "pattern": r"^[A-Za-z0-9._-]{1,249}:[0-9]+:[0-9]+$",
        "description": "TOPIC:PARTITION:OFFSET where the message first failed: its own origin, "
        "or, for a redriven message that failed again, the one the redrive gave it in this "
        "same header",
    },
    DLQ_PLACEHOLDER: {
        "type": "string",
        "const": "true",
        "description": "Only on a placeholder: the original record was too large to copy, the "
        "value is a JSON object saying where it is (topic, partition, offset) and how large",
    },
}


def schema_file(event_type: str) -> str:
    return f"json/{event_type}.schema.json"


def _message_name(event_type: str) -> str:
    head, *rest = event_type.replace("_", ".").split(".")
    return head + "".join(word.capitalize() for word in rest)


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(parts)}


_BINARY_MODE: Final = (
    "Shown in structured content mode. Binary content mode (CloudEvents Kafka protocol "
    "binding) is read too: the attributes as headers ce_specversion, ce_id, ce_source, ce_type, "
    "ce_time (ce_subject, ce_dataschema), datacontenttype as content-type, and the value is "
    "`data` alone, validated as the payload's `data`."
)


def _event_message(
    event_type: str, model: type[BaseModel], key: str, *, binary_too: bool = False
) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "summary": (model.__doc__ or "").strip(),
        **({"description": _BINARY_MODE} if binary_too else {}),
        "contentType": CLOUDEVENTS_CONTENT_TYPE,
        "payload": {
            "schemaFormat": JSON_SCHEMA_FORMAT,
            "schema": {"$ref": schema_file(event_type)},
        },
        "bindings": {
            "kafka": {
                "key": {**_UUID_KEY, "description": key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead-letter",
        "title": "An input message that could not be decoded or validated",
        "summary": "The original value, key and headers, byte for byte, plus the headers "
        "below (earlier fulfillment-* headers replaced). It never blocks its partition and is "
        "never silently dropped. When the copy would exceed the topic's size limit, a placeholder "
        "instead: a JSON value naming the original's topic, partition, offset and size, the "
        f"error headers, {DLQ_PLACEHOLDER}: true, and the original key if at most "
        f"{DLQ_PLACEHOLDER_MAX_KEY_BYTES} bytes.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": list(DLQ_HEADERS),
            "properties": _DLQ_HEADER_SCHEMAS,
            "description": "Header values are UTF-8 text; the original headers are kept too.",
        },
        "payload": {"description": "The original message value, unchanged (any bytes)"},
        "bindings": {
            "kafka": {
                "key": {"description": "The original message's key, unchanged"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(address: str, description: str, messages: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {name: _ref("components", "messages", name) for name in messages},
    }


def _operation(action: str, channel: str, messages: list[str]) -> dict[str, Any]:
    return {
        "action": action,
        "channel": _ref("channels", channel),
        "messages": [_ref("channels", channel, "messages", name) for name in messages],
    }


def asyncapi_document() -> dict[str, Any]:
    topics = DEFAULT_TOPICS
    messages: dict[str, Any] = {}
    for event_type in INPUT_TYPES:
        messages[_message_name(event_type)] = _event_message(
            event_type, INPUT_EVENT_CLASSES[event_type], _INPUT_KEYS[event_type], binary_too=True
        )
    for event_type in OUTPUT_TYPES:
        key = _UNKNOWN_SESSION_KEY if event_type == SESSION_ACCEPTANCE_REJECTED else _OUTPUT_KEY
        messages[_message_name(event_type)] = _event_message(
            event_type, OUTPUT_EVENT_CLASSES[event_type], key
        )
    messages["deadLetter"] = _dead_letter_message()

    inputs = [
        ("paymentsCompleted", topics.payments_completed, PAYMENT_COMPLETED),
        ("mechanicsAccepted", topics.mechanics_accepted, MECHANIC_ACCEPTED),
        ("sessionsEnded", topics.sessions_ended, SESSION_ENDED),
    ]
    outputs = [_message_name(event_type) for event_type in OUTPUT_TYPES]
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel, address, event_type in inputs:
        name = _message_name(event_type)
        channels[channel] = _channel(address, f"Carries {event_type} only.", [name])
        operations["receive" + name[0].upper() + name[1:]] = _operation("receive", channel, [name])
    channels["sessionsEvents"] = _channel(
        topics.sessions_events, f"Every event published by {SOURCE}.", outputs
    )
    operations["sendSessionEvents"] = _operation("send", "sessionsEvents", outputs)
    channels["fulfillmentDlq"] = _channel(
        topics.dlq, "Input messages that could not be decoded or validated.", ["deadLetter"]
    )
    operations["sendDeadLetters"] = _operation("send", "fulfillmentDlq", ["deadLetter"])

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": SOURCE,
            "version": CONTRACT_VERSION,
            "description": "Turns completed payments into help sessions and publishes what it "
            "decided. Topic names are the defaults; every one is configurable.",
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
