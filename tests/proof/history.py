"""A run's history as plain data, all the checker looks at: what was sent, what was published on
`sessions.events` and `fulfillment.dlq`, the final database, and when customers were parked.

Nothing here reads Kafka or PostgreSQL: the runner collects these, the unit tests make them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Sent:
    """One input message as produced. `data` is None for a malformed one; `kind` is why the
    workload sent it (payment, redelivery, late_acceptance, not_json, ...)."""

    kind: str
    topic: str
    value: bytes
    sent_at: datetime
    malformed: bool = False
    type: str | None = None
    source: str | None = None
    event_id: str | None = None
    time: datetime | None = None
    data: Mapping[str, Any] | None = None

    @property
    def identity(self) -> tuple[str, str] | None:
        if self.source is None or self.event_id is None:
            return None
        return (self.source, self.event_id)


@dataclass(frozen=True)
class Published:
    """One record of `sessions.events`, decoded: `time` is the event's own `time`,
    `published_at` the record's timestamp (when the relay sent it)."""

    partition: int
    offset: int
    key: str | None
    value: bytes
    id: str
    type: str
    time: datetime
    published_at: datetime
    causationid: str | None
    causationsource: str | None
    data: Mapping[str, Any]

    @property
    def cause(self) -> tuple[str, str] | None:
        if self.causationid is None or self.causationsource is None:
            return None
        return (self.causationsource, self.causationid)


@dataclass(frozen=True)
class Letter:
    """One record of the dead-letter topic: the original value it carries, and its error kind."""

    value: bytes
    kind: str
    placeholder: bool = False


@dataclass(frozen=True)
class Parking:
    """A customer the runner made poison: parked from `since` (their first event sent) until
    `released` (when `fulfillment parked release` was started); None if never released."""

    customer_id: str
    since: datetime
    released: datetime | None


@dataclass(frozen=True)
class Database:
    """The final rows, as dicts of column name to value (uuids and times as Python objects)."""

    sessions: list[Mapping[str, Any]] = field(default_factory=list)
    payments: list[Mapping[str, Any]] = field(default_factory=list)
    processed: frozenset[tuple[str, str]] = frozenset()
    outbox_rows: int = 0
    parked_events: int = 0


@dataclass(frozen=True)
class History:
    sent: list[Sent]
    published: list[Published]
    letters: list[Letter]
    database: Database
    parkings: list[Parking] = field(default_factory=list)
    # When the history was taken, and the service's sweep interval: a waiting session whose
    # expires_at is more than two intervals before `ended` must have been closed.
    ended: datetime | None = None
    sweep_interval: timedelta = timedelta(seconds=10)
    # Windows in which a fault was in effect (with its recovery): late sweeps inside them are
    # reported apart, not as violations of guarantee 3's deadline.
    faults: list[tuple[datetime, datetime]] = field(default_factory=list)
    # `dlq redrive --all` runs, instance crashes (SIGKILL) and offset commits refused after a
    # rebalance: each may add one letter per still-failing original (a letter produced, its
    # offset not committed, the batch done again by the partition's next owner).
    redrives: int = 0
    crashes: int = 0
    refused_commits: int = 0
    # Faults after which no probe came back within the bound (faults.RECOVERY_BOUND): "kind at
    # HH:MM:SS" each. A service that never recovers breaks every guarantee that needs an outcome.
    unrecovered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    guarantee: str  # e.g. "G1 one outcome per payment"
    detail: str
    customer: str | None = None


def in_partition_order(published: list[Published]) -> list[Published]:
    return sorted(published, key=lambda p: (p.partition, p.offset))


def distinct(published: list[Published]) -> list[Published]:
    """Partition order with at-least-once copies (a later record with an id seen before)
    dropped: the history a subscriber that deduplicates by id acts on."""
    seen: set[str] = set()
    kept = []
    for record in in_partition_order(published):
        if record.id not in seen:
            seen.add(record.id)
            kept.append(record)
    return kept
