"""A database URL's password never reaches a message: masked in the userinfo and the query, or
the URL not shown at all when it cannot be read one way only."""

from __future__ import annotations

import os
import string
from unittest import mock
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config.redaction import HIDDEN, mask_url, mask_urls_in, secrets_of, unreadable
from service.config.settings import ConfigurationError, load_settings
from tests.passwords import passwords, shown_markers

# Characters a password may hold in a URL without percent-encoding, bar the delimiters.
PASSWORD_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;="


def test_the_password_of_a_database_url_is_masked_and_the_rest_kept() -> None:
    assert (
        mask_url("postgresql://fulfillment:hunter2@db:5432/fulfillment?sslmode=verify-full")
        == "postgresql://fulfillment:***@db:5432/fulfillment?sslmode=verify-full"
    )


def test_a_password_in_the_query_is_masked_with_what_follows_it() -> None:
    # An unencoded `&` in the password would make its end look like another parameter.
    masked = mask_url("postgresql://db/fulfillment?user=app&password=hunter2&sslmode=require")

    assert masked == "postgresql://db/fulfillment?user=app&password=***&***"


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


HOSTS = st.sampled_from(["db", "127.0.0.1:5432", "h1:5432,h2:5433", "[::1]:5432", "db.example"])


@given(
    password=passwords(),
    encoded=st.booleans(),
    host=HOSTS,
    parameter=st.sampled_from([None, "password", "sslpassword", "PassWord"]),
)
@settings(max_examples=1000)
def test_no_part_of_a_password_is_ever_shown_and_a_readable_url_keeps_the_rest(
    password: str, encoded: bool, host: str, parameter: str | None
) -> None:
    written = quote(password, safe="") if encoded else password
    query = "sslmode=require" + (f"&{parameter}={written}" if parameter else "")
    url = f"postgresql://svc:{written}@{host}/fulfillment?{query}"

    masked = mask_url(url)
    in_text = mask_urls_in(f"failed: ({url}), retrying", secrets_of(url))

    assert masked is None or shown_markers(masked) == []
    assert shown_markers(in_text) == []
    if encoded:
        # Percent-encoded, any password reads one way: shown, masked, the rest as written.
        shown_query = "sslmode=require" + (f"&{parameter}=***" if parameter else "")
        assert masked == f"postgresql://svc:***@{host}/fulfillment?{shown_query}"
        assert shown_markers(mask_urls_in(f"failed: {url}")) == []
    else:
        assert masked is not None or unreadable(url) is not None


@given(password=passwords(), encoded=st.booleans(), host=HOSTS)
@settings(max_examples=300)
def test_a_database_url_setting_never_puts_its_password_in_an_error(
    password: str, encoded: bool, host: str
) -> None:
    written = quote(password, safe="") if encoded else password
    url = f"postgresql+asyncpg://svc:{written}@{host}/fulfillment"  # refused in any case
    with mock.patch.dict(os.environ, {"FULFILLMENT_DATABASE_URL": url}):
        with pytest.raises(ConfigurationError) as refused:
            load_settings()

    assert str(refused.value).startswith("FULFILLMENT_DATABASE_URL: ")
    assert shown_markers(str(refused.value)) == []


def test_a_url_whose_password_holds_a_slash_is_refused_naming_what_to_encode_and_not_shown() -> (
    None
):
    url = "postgresql://svc:s3cr/et@db:5432/x"

    assert mask_url(url) is None
    assert mask_urls_in(f"cannot use {url}") == f"cannot use {HIDDEN}"
    with mock.patch.dict(os.environ, {"FULFILLMENT_DATABASE_URL": url}):
        with pytest.raises(ConfigurationError) as refused:
            load_settings()
    assert "s3cr" not in str(refused.value) and "et@db" not in str(refused.value)
    assert "%2F" in str(refused.value)


def test_secret_parameters_are_masked_however_their_names_are_written() -> None:
    for name in ("password", "sslpassword", "PassWord", "ssl%70assword"):
        url = f"postgresql://db/x?sslmode=require&{name}=k%20ey"

        assert mask_url(url) == f"postgresql://db/x?sslmode=require&{name}=***"
        assert set(secrets_of(url)) == {"k%20ey", "k ey"}
