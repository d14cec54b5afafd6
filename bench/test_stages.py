"""The bench's own check of bench/stages.py, kept beside it (tests/ do not import bench): a
stage's quantile read from two scrapes of a histogram is the quantile of what was observed
between them, as PromQL's histogram_quantile reads it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bench.stages import quantile

BOUNDS = (0.001, 0.002, 0.005, 0.01, math.inf)


def _cumulative(values: list[float]) -> dict[float, float]:
    return {bound: float(sum(1 for v in values if v <= bound)) for bound in BOUNDS}


def test_only_what_was_observed_between_the_scrapes_counts() -> None:
    before = _cumulative([0.009] * 100)  # a slow past
    after = _cumulative([0.009] * 100 + [0.0015] * 10)

    assert 0.001 < quantile(before, after, 0.5) <= 0.002
    assert 0.001 < quantile(before, after, 0.99) <= 0.002


def test_the_quantile_is_interpolated_inside_its_bucket() -> None:
    after = _cumulative([0.0015] * 50 + [0.004] * 50)

    assert quantile({}, after, 0.5) == 0.002
    assert quantile({}, after, 0.75) == 0.0035


def test_nothing_observed_has_no_quantile() -> None:
    same = _cumulative([0.003] * 7)

    assert math.isnan(quantile(same, same, 0.5))


def test_past_the_last_finite_bound_only_that_bound_is_known() -> None:
    assert quantile({}, _cumulative([5.0] * 3), 0.99) == 0.01


@given(
    st.lists(st.floats(min_value=0, max_value=0.02), min_size=1, max_size=200),
    st.floats(min_value=0.01, max_value=1.0),
)
def test_the_quantile_lies_in_the_bucket_that_holds_the_true_one(
    values: list[float], q: float
) -> None:
    ordered = sorted(values)
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    upper = next(b for b in BOUNDS if true <= b)
    lower = max((b for b in BOUNDS if b < upper), default=0.0)

    got = quantile({}, _cumulative(values), q)

    assert lower <= got <= (upper if math.isfinite(upper) else lower)
