"""The proof's report: latency split by fault windows, RSS slope after the warm-up, and a
report that names every guarantee with its count and prints what broke it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from service.config.settings import Settings
from tests.proof.checker import GUARANTEES, check
from tests.proof.report import latencies, percentile, render, slope_kib_per_minute
from tests.proof.run import Plan
from tests.unit.proof.story import T0, Story, customer


def test_latency_is_split_by_whether_the_input_was_sent_inside_a_fault_window() -> None:
    story = Story()
    story.pay(customer(1), "p1")
    story.tick(10)
    story.pay(customer(2), "p2")
    history = story.history()
    second = history.sent[1].sent_at
    split = latencies(history, [(second - timedelta(seconds=1), second + timedelta(seconds=1))])
    assert len(split["outside faults"]) == 1 and len(split["during faults"]) == 1
    assert all(0 < v < 1 for values in split.values() for v in values)


def test_percentiles_and_the_rss_slope_after_the_warm_up() -> None:
    assert percentile([], 50) is None
    assert percentile([0.5], 99) == 0.5
    assert percentile([float(i) for i in range(101)], 50) == 50.0
    # 100 MiB in the first second of warm-up, then 60 KiB a minute.
    samples = [(T0, 1000)] + [(T0 + timedelta(minutes=m), 100_000 + 60 * m) for m in range(1, 6)]
    slope = slope_kib_per_minute(samples)
    assert slope is not None and abs(slope - 60) < 1e-6
    assert slope_kib_per_minute(samples[:2]) is None


def test_the_report_names_every_guarantee_and_prints_the_history_that_broke_one() -> None:
    story = Story()
    story.pay(customer(1), "p1")
    story.pay(customer(1), "p2")
    history = story.history()
    broken = replace(history, published=history.published[:1])
    plan = Plan(seed=7, duration=10, rate=5, run_dir=Path("/nonexistent"))
    settings = Settings(database_url="postgresql://u:p@127.0.0.1:5432/x")
    text = render(plan, settings, broken, check(broken), [], [])
    for guarantee in GUARANTEES:
        assert f"| {guarantee} |" in text
    assert "| G1 exactly one outcome per payment | 1 |" in text
    assert "payment p2 has 0 distinct outcomes" in text and "session.created" in text
    assert "--seed 7" in text


def test_the_report_counts_the_copies_of_an_id_published_again() -> None:
    story = Story()
    story.pay(customer(1), "p1")
    story.pay(customer(2), "p2")
    history = story.history()
    again = replace(history.published[0], offset=history.published[0].offset + 100)
    copied = replace(history, published=[*history.published, again])
    plan = Plan(seed=7, duration=10, rate=5, run_dir=Path("/nonexistent"))
    settings = Settings(database_url="postgresql://u:p@127.0.0.1:5432/x")
    assert "counted here as the cost of a fault): 0" in render(
        plan, settings, history, check(history), [], []
    )
    text = render(plan, settings, copied, check(copied), [], [])
    assert "counted here as the cost of a fault): 1" in text
