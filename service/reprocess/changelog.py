"""What `sessions.events` says, read back: each published output with its cause, for the
rebuild (which re-decides in the order these record) and the restore (which folds them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

import schemas

# Outputs no input event caused: the closing of a session whose deadline passed.
TIMER_TYPES = frozenset({schemas.SESSION_CANCELLED, schemas.SESSION_COMPLETED})


class UnreadableOutput(ValueError):
    """A record of the changelog that is not an output of this service."""


@dataclass(frozen=True, slots=True)
class Published:
    """One record of the changelog: the bytes subscribers received, and what they say."""

    id: str
    type: str
    key: str
    value: bytes
    causation: tuple[str, str]  # the cause's (source, id); the source is ours for a timer
    data: dict[str, Any]
    timestamp: int  # the record's Kafka timestamp, in milliseconds
    partition: int
    offset: int

    @property
    def timer(self) -> bool:
        return self.type in TIMER_TYPES and (
            self.type == schemas.SESSION_CANCELLED or self.data.get("reason") == "timed_out"
        )

    @property
    def unknown_session(self) -> bool:
        return (
            self.type == schemas.SESSION_ACCEPTANCE_REJECTED
            and self.data.get("reason") == "unknown_session"
        )


def published(
    key: bytes | None,
    value: bytes | None,
    *,
    timestamp: int,
    partition: int,
    offset: int,
    headers: Sequence[tuple[str, bytes | None]] = (),
) -> Published:
    """A record of the changelog in either content mode (`headers`: the Kafka record's), read
    as the structured bytes the service stored (`value` of a binary-mode record is the data
    alone, its attributes are `ce_*` headers). Raises UnreadableOutput, naming the record, when
    it lacks what a rebuild needs."""
    where = f"partition {partition} offset {offset}"
    try:
        if schemas.is_binary_mode(headers):
            value = schemas.structured_from_binary(headers, value)
        value = value or b""
        # orjson: what wrote it, and a few times faster than json on a whole changelog.
        event = orjson.loads(value)
        data = event["data"]
        cause = (str(event["causationsource"]), str(event["causationid"]))
        id_, type_ = str(event["id"]), str(event["type"])
    except (ValueError, KeyError, TypeError) as error:
        missing = f"no {error}" if isinstance(error, KeyError) else "not a JSON object"
        raise UnreadableOutput(f"{where}: {missing}") from None
    if not isinstance(data, dict):
        raise UnreadableOutput(f"{where}: data is not an object")
    return Published(
        id=id_,
        type=type_,
        key=(key or b"").decode(errors="replace"),
        value=value,
        causation=cause,
        data=data,
        timestamp=timestamp,
        partition=partition,
        offset=offset,
    )
