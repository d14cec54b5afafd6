"""Histogram observations counted per batch land exactly where one observe() per value would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from service.adapters.kafka.batch_metrics import observe_many
from service.adapters.metrics import DECISION_BUCKETS


def _samples(histogram_values: list[float], *, batched: bool) -> dict[str, float]:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "h", buckets=DECISION_BUCKETS, registry=registry)
    if batched:
        observe_many(histogram, histogram_values)
    else:
        for value in histogram_values:
            histogram.observe(value)
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
