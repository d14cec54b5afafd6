"""The dead-letter topic's headers: the original message plus why and where it failed."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas.codec import DecodeError
from schemas.envelope import rfc3339_utc

DLQ_ERROR_REASON: Final = "fulfillment-error-reason"
DLQ_ERROR_KIND: Final = "fulfillment-error-kind"
DLQ_SOURCE_TOPIC: Final = "fulfillment-source-topic"
DLQ_SOURCE_PARTITION: Final = "fulfillment-source-partition"
DLQ_SOURCE_OFFSET: Final = "fulfillment-source-offset"
DLQ_FAILED_AT: Final = "fulfillment-failed-at"
DLQ_HEADERS: Final = (
    DLQ_ERROR_REASON,
    DLQ_ERROR_KIND,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_FAILED_AT,
)


def dlq_headers(
    error: DecodeError, *, topic: str, partition: int, offset: int, failed_at: datetime
) -> list[tuple[str, bytes]]:
    """The headers to append to the original ones, values as UTF-8 text (numbers in decimal,
    the time as in the output events), in the order of DLQ_HEADERS."""
    values = (error.reason, error.kind.value, topic, str(partition), str(offset))
    texts = (*values, rfc3339_utc(failed_at))
    return [(name, text.encode()) for name, text in zip(DLQ_HEADERS, texts, strict=True)]
