"""Decode refuses every value that would fail after it: times, byte lengths, numbers, controls.

A value that passed decode and failed later (a deadline overflowing, a key PostgreSQL cannot
index) would fail its whole batch again and again; refused here, it is one dead letter.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas import DecodeErrorKind as Kind
from schemas.limits import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_AMOUNT_CENTS,
    MAX_DEADLINE_DAYS,
    MAX_ID_BYTES,
    MAX_PAYMENT_ID_BYTES,
    MAX_SOURCE_BYTES,
)
from tests.unit.schemas.examples import example

TOPIC = "payments.completed"
DECODER = schemas.Decoder(schemas.DEFAULT_TOPICS.input_types())


def payment(**changes: Any) -> bytes:
    """The contract example with attributes changed; `data_x=` changes data field x."""
    event = example()
    for name, value in changes.items():
        target, key = (event["data"], name[5:]) if name.startswith("data_") else (event, name)
        target[key] = value
    return json.dumps(event, ensure_ascii=False).encode()


def refusal(value: bytes) -> schemas.DecodeError:
    with pytest.raises(schemas.DecodeError) as refused:
        DECODER.decode(value, TOPIC)
    return refused.value


# Times


def test_a_payment_dated_before_1970_is_refused_naming_time() -> None:
    error = refusal(payment(time="0001-01-01T00:10:00+01:00"))

    assert error.kind is Kind.INVALID
    assert error.reason == (
        "invalid payment.completed: time: Input should be greater than or equal to "
        "1970-01-01T00:00:00Z, got '0001-01-01T00:10:00+01:00'"
    )


@pytest.mark.parametrize(
    ("time", "says"),
    [
        pytest.param("1970-01-01T00:30:00+01:00", "greater than or equal", id="before 1970 in UTC"),
        pytest.param("8999-12-31T23:30:00-01:00", "less than 9000", id="in 9000 in UTC"),
        pytest.param("9999-12-31T23:59:59-23:59", "less than 9000", id="past 9999 in UTC"),
        pytest.param("0000-01-01T00:00:00Z", "greater than or equal", id="year 0"),
    ],
)
def test_an_offset_that_pushes_the_instant_out_of_the_window_is_refused(
    time: str, says: str
) -> None:
    error = refusal(payment(time=time))

    assert error.kind is Kind.INVALID
    assert f"time: Input should be {says}" in error.reason
    assert repr(time) in error.reason


@pytest.mark.parametrize(
    "time",
    [
        pytest.param("1970-01-01T00:00:00Z", id="the epoch"),
        pytest.param("1970-01-01T01:00:00+01:00", id="the epoch, offset"),
        pytest.param("8999-12-31T23:59:59.999999Z", id="the last microsecond before 9000"),
        pytest.param("9000-01-01T00:30:00+01:00", id="9000 locally, 8999 in UTC"),
    ],
)
def test_a_time_inside_the_window_in_utc_is_accepted_whatever_its_offset(time: str) -> None:
    event = DECODER.decode(payment(time=time), TOPIC)

    assert EARLIEST_TIME <= event.time < LATEST_TIME


# Any offset RFC 3339 can spell (whole minutes, under a day either way).
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(local=st.datetimes(timezones=offsets))
def test_a_time_is_accepted_exactly_inside_the_window_and_then_any_deadline_fits(
    local: datetime,
) -> None:
    # Comparing aware datetimes subtracts them (a timedelta): it cannot overflow, unlike
    # converting one near year 1 or 9999 to UTC.
    inside = EARLIEST_TIME <= local < LATEST_TIME

    try:
        event = DECODER.decode(payment(time=local.isoformat()), TOPIC)
    except schemas.DecodeError as error:
        assert not inside
        assert error.kind is Kind.INVALID
        side = "less than 9000" if local >= LATEST_TIME else "greater than or equal to 1970"
        assert f"time: Input should be {side}" in error.reason
        assert f"got {local.isoformat()!r}" in error.reason
    else:
        assert inside
        assert event.time == local
        deadline = event.time + timedelta(days=MAX_DEADLINE_DAYS)
        assert deadline.astimezone(UTC) > event.time.astimezone(UTC) >= EARLIEST_TIME
        assert schemas.rfc3339_utc(deadline)


@pytest.mark.parametrize(
    "local",
    [
        datetime(1, 1, 1, 0, 10, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
    ],
    ids=["year 1 east of UTC", "year 9999 west of UTC"],
)
def test_a_time_whose_utc_conversion_would_overflow_is_refused(local: datetime) -> None:
    with pytest.raises(OverflowError):
        local.astimezone(UTC)  # what the service would have hit

    assert refusal(payment(time=local.isoformat())).kind is Kind.INVALID


# Lengths, in UTF-8 bytes


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        pytest.param("x" * 1024, True, id="1024 ASCII bytes"),
        pytest.param("é" * 512, True, id="512 two-byte characters: 1024 bytes"),
        pytest.param("😀" * 256, True, id="256 four-byte characters: 1024 bytes"),
        pytest.param("x" * 1025, False, id="1025 ASCII bytes"),
        pytest.param("é" * 513, False, id="513 two-byte characters: 1026 bytes"),
        pytest.param("😀" * 257, False, id="257 four-byte characters: 1028 bytes"),
        pytest.param("x" + "€" * 341, True, id="342 characters: 1 + 3 * 341 = 1024 bytes"),
        pytest.param("xx" + "€" * 341, False, id="343 characters: 1025 bytes"),
    ],
)
def test_an_identifier_is_measured_in_utf8_bytes(field: str, text: str, accepted: bool) -> None:
    value = payment(**{field: text})
    size = len(text.encode())

    if accepted:
        assert getattr(DECODER.decode(value, TOPIC), field) == text
    else:
        error = refusal(value)
        assert error.kind is Kind.INVALID
        assert f"{field}: String should have at most 1024 bytes in UTF-8, not {size}" in (
            error.reason
        )


def test_the_dedupe_key_of_the_longest_identifiers_fits_a_postgresql_index_entry() -> None:
    # PostgreSQL refuses a B-tree entry over 2704 bytes; each text column adds up to 4 bytes
    # of header and the tuple about 24.
    assert MAX_ID_BYTES + MAX_SOURCE_BYTES + 2 * 4 + 24 < 2704
    assert MAX_PAYMENT_ID_BYTES + 4 + 24 < 2704


@pytest.mark.parametrize(
    ("payment_id", "accepted"),
    [
        pytest.param("😀" * 255, True, id="255 four-byte characters: 1020 bytes"),
        pytest.param("😀" * 256, False, id="256 four-byte characters"),
        pytest.param("p" * 256, False, id="256 ASCII characters"),
    ],
)
def test_a_payment_id_is_at_most_255_characters_and_so_at_most_1020_bytes(
    payment_id: str, accepted: bool
) -> None:
    value = payment(data_payment_id=payment_id)

    if accepted:
        event = DECODER.decode(value, TOPIC)
        assert isinstance(event, schemas.PaymentCompletedEvent)
        assert len(event.data.payment_id.encode()) <= MAX_PAYMENT_ID_BYTES
    else:
        error = refusal(value)
        assert "data.payment_id: String should have at most 255 characters" in error.reason


identifier_chars = st.characters(codec="utf-8")


@given(text=st.text(identifier_chars, max_size=300) | st.text(identifier_chars, min_size=250))
def test_an_identifier_is_accepted_exactly_when_it_is_1_to_1024_bytes_without_controls(
    text: str,
) -> None:
    fits = 1 <= len(text.encode()) <= MAX_ID_BYTES
    clean = not any(c < "\x20" or c == "\x7f" for c in text)

    try:
        event = DECODER.decode(payment(id=text), TOPIC)
    except schemas.DecodeError as error:
        assert not (fits and clean)
        assert "'id'" in error.reason or "id: String should have" in error.reason
    else:
        assert fits and clean
        assert event.id == text


# The separator of the dedupe identity


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize("char", ["\x00", "\x1f", "\n", "\t", "\x7f"])
def test_an_identifier_with_a_control_character_is_refused_naming_it(field: str, char: str) -> None:
    error = refusal(payment(**{field: f"a{char}b"}))

    assert error.kind is Kind.INVALID
    assert (
        f"{field}: String should have no control characters, has U+{ord(char):04X} at index 1"
        in error.reason
    )


def test_two_pairs_that_would_share_a_dedupe_identity_cannot_both_decode() -> None:
    # f"{source}\x1f{id}": ("a\x1fb", "c") and ("a", "b\x1fc") would both be "a\x1fb\x1fc".
    assert DECODER.decode(payment(source="a", id="b"), TOPIC)
    for source, event_id in [("a\x1fb", "c"), ("a", "b\x1fc")]:
        assert "U+001F" in refusal(payment(source=source, id=event_id)).reason


clean_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1)


@given(first=st.tuples(clean_text, clean_text), second=st.tuples(clean_text, clean_text))
def test_accepted_source_and_id_pairs_share_an_identity_only_when_they_are_equal(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    decoded = []
    for source, event_id in (first, second):
        event = DECODER.decode(payment(source=source, id=event_id), TOPIC)
        decoded.append((event.source, event.id))

    identities = [f"{source}\x1f{event_id}" for source, event_id in decoded]
    assert (identities[0] == identities[1]) == (decoded[0] == decoded[1])


# Numbers


def test_the_largest_signed_64_bit_amount_is_accepted() -> None:
    event = DECODER.decode(payment(data_amount_cents=MAX_AMOUNT_CENTS), TOPIC)

    assert isinstance(event, schemas.PaymentCompletedEvent)
    assert event.data.amount_cents == 2**63 - 1


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        pytest.param(2**63, "9223372036854775808", id="2**63"),
        pytest.param(2**64 + 1, "18446744073709551617", id="2**64+1"),
        pytest.param(10**400, "an integer of 1329 bits", id="400 digits"),
    ],
)
def test_an_amount_beyond_a_signed_64_bit_integer_is_refused_naming_it(
    amount: int, shown: str
) -> None:
    error = refusal(payment(data_amount_cents=amount))

    assert error.kind is Kind.INVALID
    assert error.reason == (
        "invalid payment.completed: data.amount_cents: Input should be less than or equal to "
        f"9223372036854775807, got {shown}"
    )


@given(amount=st.integers(min_value=1, max_value=2**63 - 1))
def test_every_positive_signed_64_bit_amount_decodes_unchanged(amount: int) -> None:
    event = DECODER.decode(payment(data_amount_cents=amount), TOPIC)

    assert isinstance(event, schemas.PaymentCompletedEvent)
    assert event.data.amount_cents == amount


def test_a_refused_value_is_quoted_only_up_to_a_bounded_prefix() -> None:
    error = refusal(payment(source="s" * 900_000))

    assert error.reason.endswith("...'")
    assert len(error.reason) < 250


# Whatever a field holds, decode either returns an event the service can use or refuses it


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = ["specversion", "id", "source", "type", "time", "subject", "data"] + [
    f"data_{name}" for name in example()["data"]
]


@given(field=st.sampled_from(FIELDS), replacement=json_values)
def test_any_json_value_in_any_field_decodes_to_a_usable_event_or_is_a_dead_letter(
    field: str, replacement: Any
) -> None:
    try:
        event = DECODER.decode(payment(**{field: replacement}), TOPIC)
    except schemas.DecodeError as error:
        assert error.reason
        return
    # What the service does with an event next must not fail.
    assert isinstance(event, schemas.PaymentCompletedEvent)
    deadline = event.time + timedelta(days=MAX_DEADLINE_DAYS)
    schemas.rfc3339_utc(deadline)
    assert len(event.id.encode()) <= MAX_ID_BYTES
    assert len(event.source.encode()) <= MAX_SOURCE_BYTES
    assert len(event.data.payment_id.encode()) <= MAX_PAYMENT_ID_BYTES
    assert "\x00" not in event.data.payment_id
    assert 0 < event.data.amount_cents <= MAX_AMOUNT_CENTS
