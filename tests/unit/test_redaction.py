"""A database URL's password never reaches a message: masked in the userinfo and the query."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from service.redaction import mask_url, mask_urls_in

# Characters a password may hold in a URL without percent-encoding, bar the delimiters.
PASSWORD_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;="


def test_the_password_of_a_database_url_is_masked_and_the_rest_kept() -> None:
    assert (
        mask_url("postgresql://fulfillment:hunter2@db:5432/fulfillment?sslmode=verify-full")
        == "postgresql://fulfillment:***@db:5432/fulfillment?sslmode=verify-full"
    )


def test_a_password_in_the_query_is_masked() -> None:
    masked = mask_url("postgresql://db/fulfillment?user=app&password=hunter2&sslmode=require")

    assert "hunter2" not in masked
    assert "password=***" in masked and "sslmode=require" in masked


def test_a_url_without_a_password_is_unchanged() -> None:
    assert mask_url("postgresql://fulfillment@db/fulfillment") == (
        "postgresql://fulfillment@db/fulfillment"
    )


def test_urls_inside_a_message_are_masked() -> None:
    text = "cannot use postgresql://u:hunter2@db/x, nor postgres://v:swordfish@db2/y"

    assert mask_urls_in(text) == "cannot use postgresql://u:***@db/x, nor postgres://v:***@db2/y"


@given(
    user=st.text(string.ascii_letters, min_size=1, max_size=10),
    password=st.text(PASSWORD_CHARS, min_size=6, max_size=30),
    host=st.sampled_from(["db", "127.0.0.1", "db.example.internal:6432"]),
)
def test_no_password_survives_masking(user: str, password: str, host: str) -> None:
    url = f"postgresql://{user}:{password}@{host}/fulfillment?sslmode=require"

    assert mask_url(url) == f"postgresql://{user}:***@{host}/fulfillment?sslmode=require"
