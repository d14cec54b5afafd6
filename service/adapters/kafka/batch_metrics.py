"""What one consumer batch adds to the metrics: counted per batch, one increment per label set,
so a batch of thousands of events costs a handful of metric updates (plus one histogram
observation per event for the decision latency, which has no per-batch equivalent)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence

import schemas
from service.adapters import metrics
from service.core.batch import BatchResult


def record_decided(events: Sequence[schemas.InputEvent], result: BatchResult) -> None:
    """After the decisions committed: outcomes by type, duplicates, event time -> commit."""
    committed = time.time()
    observe = metrics.decision_seconds.observe
    by_type: Counter[str] = Counter()
    for event in events:
        by_type[event.type] += 1
        observe(max(0.0, committed - event.time.timestamp()))
    outcomes: Counter[tuple[str, str]] = Counter()
    for decision in result.decisions:
        outcomes[decision.event_type, decision.outcome.kind.value] += 1
    for (event_type, outcome), count in outcomes.items():
        metrics.events.labels(type=event_type, outcome=outcome).inc(count)
        by_type[event_type] -= count
    # Events the batch did not decide were claimed before: duplicates (redeliveries, replays).
    for event_type, count in by_type.items():
        if count > 0:
            metrics.events.labels(type=event_type, outcome="duplicate").inc(count)


def record_dead_lettered(
    dead: Sequence[tuple[str, schemas.DecodeError]], types: Mapping[str, str]
) -> None:
    """(topic, error) of each record sent to the DLQ; `types` maps an input topic to its type."""
    reasons: Counter[str] = Counter(error.kind.value for _, error in dead)
    for reason, count in reasons.items():
        metrics.dlq.labels(reason=reason).inc(count)
    by_type: Counter[str] = Counter(types.get(topic, topic) for topic, _ in dead)
    for event_type, count in by_type.items():
        metrics.events.labels(type=event_type, outcome="dead_lettered").inc(count)


def record_batch(events: int, seconds: float) -> None:
    metrics.batch_events.observe(events)
    metrics.batch_seconds.observe(seconds)
