"""Replay targets, computed as Kafka's reset tool computes them; its scope and duration syntax."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.reprocess.replay_targets import (
    AtTime,
    BadScope,
    Earliest,
    ShiftBy,
    ToOffset,
    export_csv,
    kafka_target,
    parse_duration,
    parse_scope,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@given(
    beginning=st.integers(0, 1000),
    length=st.integers(0, 1000),
    target=st.one_of(
        st.builds(ToOffset, st.integers(-5000, 5000)),
        st.builds(ShiftBy, st.integers(-5000, 5000)),
        st.just(Earliest()),
    ),
    committed=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_a_target_always_lies_between_the_beginning_and_the_end(
    beginning: int, length: int, target: ToOffset | ShiftBy | Earliest, committed: int | None
) -> None:
    end = beginning + length
    found = kafka_target(target, committed=committed, beginning=beginning, end=end, at_time=None)
    assert beginning <= found <= end


def test_a_shift_counts_from_the_committed_offset() -> None:
    assert kafka_target(ShiftBy(-3), committed=10, beginning=0, end=20, at_time=None) == 7


def test_a_time_with_no_record_after_it_falls_back_to_the_end_as_kafka_does() -> None:
    assert kafka_target(AtTime(NOW), committed=5, beginning=0, end=20, at_time=None) == 20
    assert kafka_target(AtTime(NOW), committed=5, beginning=0, end=20, at_time=3) == 3


def test_a_scope_names_partitions_after_a_colon_and_a_bare_topic_means_all() -> None:
    assert parse_scope(["a:0,2", "b", "a:1"]) == {"a": frozenset({0, 1, 2}), "b": None}
    assert parse_scope(["a:0", "a"]) == {"a": None}


@pytest.mark.parametrize("item", ["a:x", ":1", "a:-1", "a:"])
def test_a_scope_that_is_not_topic_colon_partitions_is_refused_by_name(item: str) -> None:
    with pytest.raises(BadScope, match=r"partitions|no topic"):
        parse_scope([item])


def test_durations_read_as_kafka_s_by_duration_reads_them() -> None:
    assert parse_duration("PT1H30M") == timedelta(hours=1, minutes=30)
    assert parse_duration("P1DT2H3M4.5S") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    for bad in ("1h", "P", "PT", "PT1X"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_the_export_quotes_long_topic_names_as_kafka_s_csv_writer_does() -> None:
    assert export_csv([("short.topic", 0, 5)]) == "short.topic,0,5\n"
    assert export_csv([("x" * 25, 1, 2)]) == f'"{"x" * 25}",1,2\n'
