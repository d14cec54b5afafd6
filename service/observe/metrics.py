"""The service's Prometheus metrics: every name, label and help text, on one registry.

`REGISTRY` is what `/metrics` serves. It is a registry of its own, not prometheus-client's global
one, so importing a library that registers metrics globally cannot change what the service
exposes, and tests can read exactly the service's metrics. It also carries the process, platform
and garbage-collector collectors (`process_resident_memory_bytes`, `python_info`, ...).

deploy/observability/ (alerts and dashboard) refers to these names; its tests check every name
it uses against this registry.
"""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import version
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    platform_collector,
    process_collector,
)

from schemas import DecodeErrorKind
from service.core.outcomes import Reason

REGISTRY: Final = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)


class Handled(StrEnum):
    """The `outcome` of an input event that was not decided: claimed before (a redelivery or a
    replay), sent to the dead-letter topic, or set aside behind a poison event. A decided
    event's `outcome` is its decision's kind (service/core/outcomes.py: an acceptance refused
    for any reason is `acceptance_rejected`, an end that changes nothing `ignored`; the reason
    is in the log)."""

    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"
    PARKED = "parked"


class RetryKind(StrEnum):
    """The `kind` of a retry: `transient` when the failure is an outage
    (service/adapters/failures.py: `Failure.OUTAGE`), `bug` for anything else."""

    TRANSIENT = "transient"
    BUG = "bug"


SWEEPER_REASONS: Final = (Reason.EXPIRED.value, Reason.TIMED_OUT.value)
# The `loop` and `kind` labels of `retries`: the consumer's decide and dead_letter steps, the
# outbox relay, the sweeper; the kinds from `RetryKind`.
RETRY_LOOPS: Final = ("decide", "dead_letter", "relay", "sweep")
RETRY_KINDS: Final = tuple(kind.value for kind in RetryKind)

# Event time -> decision commit. Under a second when keeping up; seconds to a minute while
# catching up after an outage or a rebalance; beyond the last bucket only in `+Inf`.
DECISION_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
# One batch's transaction plus its offset commit: milliseconds for a few events, up to seconds
# for a full batch (FULFILLMENT_BATCH_SIZE) on a busy database.
BATCH_SECONDS_BUCKETS: Final = tuple(b for b in DECISION_BUCKETS if b <= 10.0)
# Events per batch, 1 up to FULFILLMENT_BATCH_SIZE's maximum (100000), roughly 1-2.5-5 per decade.
BATCH_EVENTS_BUCKETS: Final = (
    1.0,
    2.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
    10000.0,
    25000.0,
    50000.0,
    100000.0,
)

# One stage of an event's way through the service, for the latency budget (bench/README.md):
# fine below 50 ms, where a customer's answer is made, and up to a minute while catching up.
STAGE_BUCKETS: Final = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

events = Counter(
    "fulfillment_events_total",
    "Input events handled, by event type and outcome.",
    ["type", "outcome"],
    registry=REGISTRY,
)
decision_seconds = Histogram(
    "fulfillment_decision_seconds",
    "Seconds from an input event's time to the commit of its decision.",
    buckets=DECISION_BUCKETS,
    registry=REGISTRY,
)
batch_seconds = Histogram(
    "fulfillment_batch_seconds",
    "Seconds one consumer batch took, from decision start to offset commit.",
    buckets=BATCH_SECONDS_BUCKETS,
    registry=REGISTRY,
)
batch_events = Histogram(
    "fulfillment_batch_events",
    "Input events in one consumer batch.",
    buckets=BATCH_EVENTS_BUCKETS,
    registry=REGISTRY,
)
batch_age_seconds = Histogram(
    "fulfillment_batch_age_seconds",
    "Seconds from an input record's timestamp (its CreateTime) to the start of its batch's "
    "decision: the produce, the fetch, the linger and any wait behind the previous batch. "
    "One observation per record.",
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
decide_seconds = Histogram(
    "fulfillment_decide_seconds",
    "Seconds from a batch's decision start to its transaction's commit. One observation per "
    "event of the batch, so its quantiles are what an event waits.",
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
offset_commit_seconds = Histogram(
    "fulfillment_offset_commit_seconds",
    "Seconds one consumer batch's offset commit took, from its request to the broker's answer.",
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
relay_wake_seconds = Histogram(
    "fulfillment_relay_wake_seconds",
    "Seconds from the commit of a transaction that wrote outbox rows to the leading relay's "
    "next send (its wake-up, its read of the outbox and its fence). One observation per "
    "transaction; another instance's commit is timed by its notification's payload.",
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "fulfillment_consumer_lag",
    "Messages in an assigned input partition not yet consumed (high watermark - position).",
    ["topic", "partition"],
    registry=REGISTRY,
    multiprocess_mode="livesum",  # a partition is one instance's; the others report 0 for it
)
outbox_backlog = Gauge(
    "fulfillment_outbox_backlog",
    "Outbox rows not yet published to Kafka.",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",  # the shared database: the latest reading is the value
)
outbox_oldest_age_seconds = Gauge(
    "fulfillment_outbox_oldest_age_seconds",
    "Age in seconds of the oldest outbox row not yet published (0 when the outbox is empty).",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
published = Counter(
    "fulfillment_published_total",
    "session.* events the relay published to Kafka.",
    registry=REGISTRY,
)
dlq = Counter(
    "fulfillment_dlq_total",
    "Input messages sent to the dead-letter topic, by why they could not be decoded.",
    ["reason"],
    registry=REGISTRY,
)
sweeper_closed = Counter(
    "fulfillment_sweeper_closed_total",
    "Sessions the sweeper closed: expired (never accepted) or timed_out (end never came).",
    ["reason"],
    registry=REGISTRY,
)
retries = Counter(
    "fulfillment_retries_total",
    "Retries after a failure, by loop and kind (transient outage or bug).",
    ["loop", "kind"],
    registry=REGISTRY,
)
ready = Gauge(
    "fulfillment_ready",
    "1 while the service is ready (database and Kafka reachable, consuming), else 0.",
    registry=REGISTRY,
    multiprocess_mode="livemin",  # ready only if every instance is
)
build = Info(
    "fulfillment_build",
    "The running build; the value is always 1.",
    registry=REGISTRY,
)
parked_customers = Gauge(
    "fulfillment_parked_customers",
    "Customers whose events are parked behind a poison event.",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
parked_events = Gauge(
    "fulfillment_parked_events",
    "Input events parked behind a poison event, waiting for it to be resolved.",
    registry=REGISTRY,
    multiprocess_mode="livemostrecent",
)
poison_retries = Counter(
    "fulfillment_poison_retries_total",
    "Retries of an event whose decision failed, before it is parked.",
    registry=REGISTRY,
)

build.info({"version": version("session-fulfillment")})

# Closed label sets start at 0, so the first increment is a visible rise, not a new series that
# rate() and increase() cannot see until its second sample.
for _kind in DecodeErrorKind:
    dlq.labels(reason=_kind.value)
for _reason in SWEEPER_REASONS:
    sweeper_closed.labels(reason=_reason)
for _loop in RETRY_LOOPS:
    for _retry_kind in RETRY_KINDS:
        retries.labels(loop=_loop, kind=_retry_kind)
