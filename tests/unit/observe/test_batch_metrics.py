"""What one consumer batch adds to the metrics: histogram observations counted per batch land
exactly where one observe() per value would, and each event is counted under its outcome."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

import schemas
from service.adapters.memory_store import MemoryDatabase
from service.core.outcomes import Kind
from service.core.parking import key_of
from service.handlers.consume import handle_batch
from service.observe.batch_metrics import observe_many, observe_repeated, record_decided
from service.observe.metrics import DECISION_BUCKETS, REGISTRY, STAGE_BUCKETS, Handled
from tests.unit.core.builders import ALICE, BOB, POLICY, T0, acceptance, minutes, payment
from tests.unit.core.builders import session_of as session_for

ROOT = Path(__file__).resolve().parents[3]


def _samples(histogram_values: list[float], *, batched: bool) -> dict[str, float]:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "h", buckets=DECISION_BUCKETS, registry=registry)
    if batched:
        observe_many(histogram, histogram_values)
    else:
        for value in histogram_values:
            histogram.observe(value)
    return _exposed(registry)


def _exposed(registry: CollectorRegistry) -> dict[str, float]:
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


@given(
    st.lists(
        st.one_of(
            st.floats(min_value=0, max_value=120, allow_nan=False),
            st.sampled_from(DECISION_BUCKETS),  # exactly on a bound: `le` includes it
        ),
        max_size=300,
    )
)
def test_observing_a_batch_at_once_counts_each_bucket_as_observing_one_by_one(
    values: list[float],
) -> None:
    one_by_one = _samples(values, batched=False)
    at_once = _samples(values, batched=True)

    assert at_once.keys() == one_by_one.keys()
    for name, value in one_by_one.items():
        assert abs(at_once[name] - value) <= 1e-6 * max(1.0, abs(value)), name


@given(
    st.one_of(
        st.floats(min_value=0, max_value=120, allow_nan=False),
        st.sampled_from(STAGE_BUCKETS),  # exactly on a bound: `le` includes it
    ),
    st.integers(min_value=0, max_value=3000),
)
def test_observing_one_value_for_a_whole_batch_counts_as_observing_it_once_per_event(
    value: float, count: int
) -> None:
    registries = CollectorRegistry(), CollectorRegistry()
    at_once, one_by_one = (
        Histogram("h_seconds", "h", buckets=STAGE_BUCKETS, registry=r) for r in registries
    )
    observe_repeated(at_once, value, count)
    for _ in range(count):
        one_by_one.observe(value)

    expected = _exposed(registries[1])
    got = _exposed(registries[0])
    assert got.keys() == expected.keys()
    for name, seen in expected.items():
        assert abs(got[name] - seen) <= 1e-6 * max(1.0, abs(seen)), name


def _outcomes() -> dict[tuple[str, str], float]:
    return {
        (s.labels["type"], s.labels["outcome"]): s.value
        for family in REGISTRY.collect()
        if family.name == "fulfillment_events"
        for s in family.samples
        if s.name == "fulfillment_events_total"
    }


def test_events_parked_behind_a_poison_event_are_counted_as_parked_not_as_duplicates() -> None:
    store = MemoryDatabase().store()
    poisoned = payment("alice-1", ALICE)
    behind = acceptance(session_for("alice-1"), at=T0 + minutes(1))
    events: list[schemas.InputEvent] = [payment("bob-1", BOB), poisoned, behind]
    events.append(payment("bob-1", BOB))  # redelivered
    before = _outcomes()

    result = asyncio.run(handle_batch(store, events, policy=POLICY, poison={key_of(poisoned): "x"}))
    record_decided(events, result)

    after = _outcomes()
    moved = {key: after[key] - before.get(key, 0.0) for key in after}
    assert len(result.parked) == 2
    assert {key: n for key, n in moved.items() if n} == {
        (schemas.PAYMENT_COMPLETED, "created"): 1,
        (schemas.PAYMENT_COMPLETED, "parked"): 1,
        (schemas.MECHANIC_ACCEPTED, "parked"): 1,
        (schemas.PAYMENT_COMPLETED, "duplicate"): 1,
    }


def test_every_outcome_label_is_a_decision_kind_or_what_became_of_an_undecided_event() -> None:
    documented = (ROOT / "deploy" / "observability" / "README.md").read_text("utf-8")
    row = next(line for line in documented.splitlines() if "`fulfillment_events_total`" in line)
    listed = set(re.findall(r"`([a-z_]+)`", row.split("`outcome`:", 1)[1]))

    assert listed == {k.value for k in Kind if k is not Kind.CANCELLED} | set(Handled)
