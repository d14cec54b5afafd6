"""The dead-letter topic's records: the original message plus why and where it failed.

`dlq_record` is what to produce: the original value, key and headers with the error headers
(`dlq_headers`) in place of any earlier `fulfillment-*` ones, or, when that record would not fit
the dead-letter topic, a placeholder saying where the original is (see `dlq_record`).

A message is named by its origin, `TOPIC:PARTITION:OFFSET` (`origin_text`). Every dead letter
also names its *original* origin (DLQ_ORIGINAL), where the message first failed: a redrive
publishes the message again with that header, and when it fails again its new dead letter keeps
it, so all the letters of one message share it however often it is redriven.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from schemas.decode_errors import DecodeError
from schemas.envelope import rfc3339_utc

Headers = Sequence[tuple[str, bytes | None]]

DLQ_ERROR_REASON: Final = "fulfillment-error-reason"
DLQ_ERROR_KIND: Final = "fulfillment-error-kind"
DLQ_SOURCE_TOPIC: Final = "fulfillment-source-topic"
DLQ_SOURCE_PARTITION: Final = "fulfillment-source-partition"
DLQ_SOURCE_OFFSET: Final = "fulfillment-source-offset"
DLQ_FAILED_AT: Final = "fulfillment-failed-at"
# TOPIC:PARTITION:OFFSET where the message first failed: the letter's own origin on a first
# failure, the one a redriven message carries (this same header) when it fails again.
DLQ_ORIGINAL: Final = "fulfillment-original-origin"
# On a placeholder only, with the value b"true": the original record was too large to copy.
DLQ_PLACEHOLDER: Final = "fulfillment-placeholder"
# Every header this service adds starts so; a redriven dead letter's are replaced, not stacked.
DLQ_HEADER_PREFIX: Final = "fulfillment-"
DLQ_HEADERS: Final = (
    DLQ_ERROR_REASON,
    DLQ_ERROR_KIND,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_FAILED_AT,
    DLQ_ORIGINAL,
)
# Kafka's rule for a topic name: at most 249 of these characters.
_ORIGIN: Final = re.compile(r"([A-Za-z0-9._-]{1,249}):([0-9]{1,10}):([0-9]{1,19})")
# The longest origin text: a topic name, a 32-bit partition, a 64-bit offset.
DLQ_MAX_ORIGIN_BYTES: Final = 249 + 1 + 10 + 1 + 19


def origin_text(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def parse_origin(text: str) -> str:
    """`TOPIC:PARTITION:OFFSET`, checked and in its canonical form (numbers without leading
    zeros); raises ValueError naming what is wrong."""
    found = _ORIGIN.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not TOPIC:PARTITION:OFFSET (e.g. payments.completed:0:42)")
    topic, partition, offset = found.groups()
    return origin_text(topic, int(partition), int(offset))


def original_origin(headers: Headers, *, topic: str, partition: int, offset: int) -> str:
    """Where the message at `topic:partition:offset` first failed: the origin its DLQ_ORIGINAL
    header names (a redriven message), else its own. A header that is not one valid origin is
    ignored: the message is then its own original."""
    for name, value in headers:
        if name == DLQ_ORIGINAL and value is not None:
            try:
                return parse_origin(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                break
    return origin_text(topic, partition, offset)


def dlq_headers(
    error: DecodeError,
    *,
    topic: str,
    partition: int,
    offset: int,
    failed_at: datetime,
    original: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers to append to the original ones, values as UTF-8 text (numbers in decimal,
    the time as in the output events), in the order of DLQ_HEADERS. `original` (the message's
    `original_origin`) is its own origin when not given."""
    values = (error.reason, error.kind.value, topic, str(partition), str(offset))
    first = original if original is not None else origin_text(topic, partition, offset)
    texts = (*values, rfc3339_utc(failed_at), first)
    return [(name, text.encode()) for name, text in zip(DLQ_HEADERS, texts, strict=True)]


# What a record costs on the wire besides its value, key and header bytes: the record batch
# header (61 bytes) and the record's own varints (attributes, timestamp and offset deltas, key
# and value lengths: at most 31 bytes), rounded up, plus two varint lengths per header.
DLQ_RECORD_OVERHEAD_BYTES: Final = 128
DLQ_HEADER_OVERHEAD_BYTES: Final = 10
# The smallest `max_bytes` a placeholder is sure to fit: its reason (at most 1000 characters,
# 4000 bytes) is in its value and in a header, the topic name (at most 249 bytes) twice too,
# and the original origin (DLQ_MAX_ORIGIN_BYTES) once.
DLQ_MIN_MAX_BYTES: Final = 16_384
# A placeholder keeps the original key up to this size (it partitions the dead letters as the
# original was); a larger key is counted in the placeholder's value instead.
DLQ_PLACEHOLDER_MAX_KEY_BYTES: Final = 1024


def record_bytes(value: bytes | None, key: bytes | None, headers: Headers) -> int:
    """An upper bound of the size of a record as the broker checks it against its limit."""
    size = DLQ_RECORD_OVERHEAD_BYTES + len(value or b"") + len(key or b"")
    for name, header_value in headers:
        size += DLQ_HEADER_OVERHEAD_BYTES + len(name.encode()) + len(header_value or b"")
    return size


def dlq_record(
    value: bytes | None,
    key: bytes | None,
    headers: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    error: DecodeError,
    failed_at: datetime,
    max_bytes: int,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
    """The (value, key, headers) to produce to the dead-letter topic for a message that failed.

    Normally the original value and key, byte for byte, and the original headers without any
    earlier `fulfillment-*` header (a redriven dead letter fails again without piling them up),
    followed by `dlq_headers`, whose DLQ_ORIGINAL is the one a redriven message carries
    (`original_origin`): the lineage survives each new failure.

    When that record would exceed `max_bytes` (the dead-letter topic's `max.message.bytes`, or
    the producer's `max.request.size` if smaller), counting `record_bytes`, a placeholder
    instead: its value is a small JSON object (`placeholder_value`) saying where the original
    is and how large it was; its headers are `dlq_headers` plus `fulfillment-placeholder: true`
    (the original headers are dropped: they may be what is too large); its key is the original
    key when that is at most DLQ_PLACEHOLDER_MAX_KEY_BYTES, else none. The original stays on its
    topic until retention, where the placeholder points.

    Raises ValueError when `max_bytes` is below DLQ_MIN_MAX_BYTES.
    """
    if max_bytes < DLQ_MIN_MAX_BYTES:
        raise ValueError(f"max_bytes {max_bytes} is below the minimum of {DLQ_MIN_MAX_BYTES}")
    original = original_origin(headers, topic=topic, partition=partition, offset=offset)
    error_headers = dlq_headers(
        error,
        topic=topic,
        partition=partition,
        offset=offset,
        failed_at=failed_at,
        original=original,
    )
    kept: list[tuple[str, bytes | None]] = [
        (name, header_value)
        for name, header_value in headers
        if not name.startswith(DLQ_HEADER_PREFIX)
    ]
    copied: list[tuple[str, bytes | None]] = [*kept, *error_headers]
    size = record_bytes(value, key, copied)
    if size <= max_bytes:
        return value, key, copied
    placeholder = placeholder_value(
        value,
        key,
        headers,
        topic=topic,
        partition=partition,
        offset=offset,
        error=error,
        copied_bytes=size,
        max_bytes=max_bytes,
    )
    small_key = key if key is not None and len(key) <= DLQ_PLACEHOLDER_MAX_KEY_BYTES else None
    return placeholder, small_key, [*error_headers, (DLQ_PLACEHOLDER, b"true")]


def placeholder_value(
    value: bytes | None,
    key: bytes | None,
    headers: Headers,
    *,
    topic: str,
    partition: int,
    offset: int,
    error: DecodeError,
    copied_bytes: int,
    max_bytes: int,
) -> bytes:
    """The value of a placeholder dead letter: compact UTF-8 JSON, keys in this order.

    `{"placeholder": "the original record is too large for the dead-letter topic",
    "topic": ..., "partition": ..., "offset": ..., "value_bytes": ..., "key_bytes": ...,
    "header_count": ..., "header_bytes": ..., "record_bytes": ..., "max_bytes": ...,
    "error_kind": ..., "error_reason": ...}`; `value_bytes` and `key_bytes` are null for a
    null value or key. `record_bytes` is the size the copy would have had.
    """
    document = {
        "placeholder": "the original record is too large for the dead-letter topic",
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "value_bytes": None if value is None else len(value),
        "key_bytes": None if key is None else len(key),
        "header_count": len(headers),
        "header_bytes": sum(len(name.encode()) + len(v or b"") for name, v in headers),
        "record_bytes": copied_bytes,
        "max_bytes": max_bytes,
        "error_kind": error.kind.value,
        "error_reason": error.reason,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
