"""dlq_record: the original with its error headers, or a placeholder when it would not fit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas.dlq import (
    DLQ_MAX_ORIGIN_BYTES,
    DLQ_MIN_MAX_BYTES,
    DLQ_PLACEHOLDER_MAX_KEY_BYTES,
    DLQ_RECORD_OVERHEAD_BYTES,
    dlq_headers,
    origin_text,
    parse_origin,
    record_bytes,
)

ERROR = schemas.DecodeError(schemas.DecodeErrorKind.NOT_JSON, "not JSON: expected value")
FAILED_AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
MAX = 1_048_576
WHERE: dict[str, Any] = {"topic": "payments.completed", "partition": 3, "offset": 42}


def record(
    value: bytes | None,
    key: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    *,
    max_bytes: int = MAX,
    error: schemas.DecodeError = ERROR,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
    return schemas.dlq_record(
        value,
        key,
        headers,
        **WHERE,
        error=error,
        failed_at=FAILED_AT,
        max_bytes=max_bytes,
    )


def error_headers(error: schemas.DecodeError = ERROR) -> list[tuple[str, bytes]]:
    return dlq_headers(error, **WHERE, failed_at=FAILED_AT)


def test_a_record_that_fits_is_the_original_followed_by_the_error_headers() -> None:
    headers: list[tuple[str, bytes | None]] = [("traceparent", b"00-abc-def-01"), ("x", None)]

    value, key, sent = record(b"not json", b"k", headers)

    assert (value, key) == (b"not json", b"k")
    assert sent == [*headers, *error_headers()]


def test_a_redriven_dead_letter_gets_fresh_error_headers_instead_of_a_second_set() -> None:
    first = record(b"not json", b"k", [("traceparent", b"t")])
    again = schemas.DecodeError(schemas.DecodeErrorKind.INVALID, "invalid payment.completed")

    _, _, sent = record(b"not json", b"k", first[2], error=again)

    assert sent == [("traceparent", b"t"), *error_headers(again)]
    names = [name for name, _ in sent]
    assert len(names) == len(set(names))


def test_a_redriven_message_that_fails_again_keeps_the_origin_of_its_first_failure() -> None:
    # Failed first at payments.completed:0:7, redriven (the redrive adds the lineage header),
    # failing again at payments.completed:3:42.
    redriven = [("traceparent", b"t"), (schemas.DLQ_ORIGINAL, b"payments.completed:0:7")]

    _, _, sent = record(b"not json", b"k", redriven)
    placeholder = record(b"x" * MAX, b"k", redriven)[2]

    assert (schemas.DLQ_ORIGINAL, b"payments.completed:0:7") in sent
    assert (schemas.DLQ_SOURCE_OFFSET, b"42") in sent
    assert [name for name, _ in sent].count(schemas.DLQ_ORIGINAL) == 1
    assert (schemas.DLQ_ORIGINAL, b"payments.completed:0:7") in placeholder


def test_a_first_failure_is_its_own_original() -> None:
    _, _, sent = record(b"not json", b"k", [])

    assert (schemas.DLQ_ORIGINAL, b"payments.completed:3:42") in sent


@pytest.mark.parametrize(
    "forged", [b"", b"payments", b"a b:0:1", b"t:0:-1", b"t:x:1", b"\xff:0:1", b"t" * 250 + b":0:1"]
)
def test_a_lineage_header_that_is_no_origin_is_ignored(forged: bytes) -> None:
    _, _, sent = record(b"not json", b"k", [(schemas.DLQ_ORIGINAL, forged)])

    assert dict(sent)[schemas.DLQ_ORIGINAL] == b"payments.completed:3:42"


@given(
    topic=st.text(alphabet="abcXYZ019._-", min_size=1, max_size=249),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
)
def test_an_origin_reads_back_as_written_and_never_exceeds_its_bound(
    topic: str, partition: int, offset: int
) -> None:
    text = origin_text(topic, partition, offset)

    assert parse_origin(text) == text
    assert len(text.encode()) <= DLQ_MAX_ORIGIN_BYTES


def test_a_placeholder_header_of_an_earlier_failure_is_not_carried_over() -> None:
    earlier = [("fulfillment-placeholder", b"true"), ("fulfillment-anything", b"x"), ("a", b"b")]

    _, _, sent = record(b"v", None, earlier)

    assert sent == [("a", b"b"), *error_headers()]


def test_a_null_value_and_key_stay_null() -> None:
    assert record(None, None, [])[:2] == (None, None)


def test_a_record_exactly_at_the_limit_is_copied_and_one_byte_more_is_not() -> None:
    headers: list[tuple[str, bytes | None]] = [("h", b"v")]
    size_without_value = record_bytes(b"", b"k", [*headers, *error_headers()])
    fits = b"x" * (MAX - size_without_value)

    assert record(fits, b"k", headers)[0] == fits
    placeholder, _, sent = record(fits + b"x", b"k", headers)
    assert placeholder != fits + b"x"
    assert (schemas.DLQ_PLACEHOLDER, b"true") in sent


def test_a_record_too_large_for_the_dlq_becomes_a_placeholder_saying_where_the_original_is() -> (
    None
):
    value = b"x" * MAX
    headers: list[tuple[str, bytes | None]] = [("traceparent", b"t" * 10), ("big", b"y" * 100)]

    placeholder, key, sent = record(value, b"customer-1", headers)

    assert placeholder is not None
    assert key == b"customer-1"
    assert sent == [*error_headers(), (schemas.DLQ_PLACEHOLDER, b"true")]
    assert json.loads(placeholder) == {
        "placeholder": "the original record is too large for the dead-letter topic",
        "topic": "payments.completed",
        "partition": 3,
        "offset": 42,
        "value_bytes": MAX,
        "key_bytes": 10,
        "header_count": 2,
        "header_bytes": len("traceparent") + 10 + len("big") + 100,
        "record_bytes": record_bytes(value, b"customer-1", [*headers, *error_headers()]),
        "max_bytes": MAX,
        "error_kind": "not_json",
        "error_reason": "not JSON: expected value",
    }


def test_headers_alone_can_make_a_record_too_large() -> None:
    headers: list[tuple[str, bytes | None]] = [(f"h{i}", b"z" * 1000) for i in range(1100)]

    placeholder, _, sent = record(b"{}", None, headers)

    assert placeholder is not None
    assert json.loads(placeholder)["header_count"] == 1100
    assert len(sent) == len(schemas.DLQ_HEADERS) + 1


def test_a_placeholder_keeps_a_small_key_and_drops_a_large_one() -> None:
    small = b"k" * DLQ_PLACEHOLDER_MAX_KEY_BYTES
    large = small + b"k"

    assert record(b"x" * MAX, small, [])[1] == small
    placeholder, key, _ = record(b"x" * MAX, large, [])
    assert key is None
    assert placeholder is not None
    assert json.loads(placeholder)["key_bytes"] == len(large)


def test_a_placeholder_is_deterministic() -> None:
    assert record(b"x" * MAX, b"k", [("h", b"v")]) == record(b"x" * MAX, b"k", [("h", b"v")])


def test_a_limit_too_small_for_any_placeholder_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="below the minimum"):
        record(b"v", None, [], max_bytes=DLQ_MIN_MAX_BYTES - 1)


longest_reason = schemas.DecodeError(schemas.DecodeErrorKind.INVALID, "😀" * 5000)
huge_headers = st.lists(
    st.tuples(st.text(min_size=1, max_size=300), st.binary(max_size=3000) | st.none()),
    max_size=30,
)


@given(
    value=st.binary(max_size=40_000) | st.none(),
    key=st.binary(max_size=3000) | st.none(),
    headers=huge_headers,
    max_bytes=st.integers(min_value=DLQ_MIN_MAX_BYTES, max_value=60_000),
    error=st.sampled_from([ERROR, longest_reason]),
    redriven=st.booleans(),
)
def test_whatever_the_original_what_is_produced_fits_the_limit(
    value: bytes | None,
    key: bytes | None,
    headers: list[tuple[str, bytes | None]],
    max_bytes: int,
    error: schemas.DecodeError,
    redriven: bool,
) -> None:
    topic = "t" * 249  # the longest Kafka topic name
    longest = origin_text("o" * 249, 2**31 - 1, 2**63 - 1).encode()
    lineage = [(schemas.DLQ_ORIGINAL, longest)] if redriven else []
    sent = schemas.dlq_record(
        value,
        key,
        [*lineage, *headers],
        topic=topic,
        partition=2**31 - 1,
        offset=2**63 - 1,
        error=error,
        failed_at=FAILED_AT,
        max_bytes=max_bytes,
    )

    assert record_bytes(*sent) <= max_bytes
    if (schemas.DLQ_PLACEHOLDER, b"true") not in sent[2]:
        assert sent[:2] == (value, key)


def test_the_size_counts_value_key_header_names_and_values_and_the_overhead() -> None:
    assert record_bytes(b"vvv", b"kk", [("name", b"value"), ("n", None)]) == (
        DLQ_RECORD_OVERHEAD_BYTES + 3 + 2 + (10 + 4 + 5) + (10 + 1)
    )
