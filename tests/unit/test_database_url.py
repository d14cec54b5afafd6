"""FULFILLMENT_DATABASE_URL with several hosts, as every HA set-up gives it: accepted as asyncpg
reads it, shown without its password, and a malformed host or session attribute refused in one
line naming the variable."""

from __future__ import annotations

import os

import pytest

from service.config.database_url import Host, address_of, hosts_of
from service.config.redaction import mask_url
from service.config.settings import ENV_PREFIX, ConfigurationError, load_settings

PASSWORD = "s3cr3t-Pa55"
HA_URL = (
    f"postgresql://fulfillment:{PASSWORD}@db-a.internal:5432,db-b.internal:5433/fulfillment"
    "?target_session_attrs=read-write&sslmode=require"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def refusal(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv(f"{ENV_PREFIX}DATABASE_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return str(caught.value)


def test_a_url_with_several_hosts_and_target_session_attrs_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}DATABASE_URL", HA_URL)

    settings = load_settings()

    assert settings.dsn == HA_URL
    assert settings.database_address == "db-a.internal:5432,db-b.internal:5433/fulfillment"
    masked = mask_url(settings.database_url.get_secret_value())
    assert masked is not None
    assert PASSWORD not in masked


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("postgresql://u:p@h1:5432,h2:5432/db", [Host("h1", 5432), Host("h2", 5432)]),
        ("postgresql://u:p@h1,h2:6432/db", [Host("h1", 5432), Host("h2", 6432)]),
        ("postgresql://u@[::1]:5433,10.0.0.2/db", [Host("::1", 5433), Host("10.0.0.2", 5432)]),
        ("postgresql:///db", [Host("localhost", 5432)]),
    ],
)
def test_each_host_is_read_with_its_port_or_the_default(url: str, hosts: list[Host]) -> None:
    assert hosts_of(url) == hosts


def test_the_address_of_several_hosts_names_them_all_without_user_or_password() -> None:
    assert address_of("postgresql://u:pw@[::1]:5433,h2/db?x=1") == "[::1]:5433,h2:5432/db"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://fulfillment:{PASSWORD}@h1:5432,h2:port/db",
        f"postgresql://fulfillment:{PASSWORD}@h1:5432,h2:70000/db",
        f"postgresql://fulfillment:{PASSWORD}@h1:5432,[::1/db",
    ],
)
def test_a_malformed_host_among_several_is_refused_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    message = refusal(monkeypatch, url)

    assert message.startswith("FULFILLMENT_DATABASE_URL: ")
    assert "\n" not in message
    assert PASSWORD not in message


def test_a_bogus_target_session_attrs_is_refused_listing_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, HA_URL.replace("read-write", "master"))

    attrs = "any, primary, standby, prefer-standby, read-write, read-only"
    assert f"target_session_attrs=master is not one of {attrs}" in message
    assert PASSWORD not in message
