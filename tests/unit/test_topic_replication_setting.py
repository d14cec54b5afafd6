"""FULFILLMENT_TOPIC_REPLICATION_FACTOR: unset, topics take the broker's default (KIP-464)."""

from __future__ import annotations

import os

import pytest

from service.config.settings import ENV_PREFIX, ConfigurationError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_unset_the_replication_factor_is_left_to_the_broker() -> None:
    assert load_settings().topic_replication_factor is None


def test_a_replication_factor_set_is_the_one_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}TOPIC_REPLICATION_FACTOR", "3")
    assert load_settings().topic_replication_factor == 3


def test_a_replication_factor_below_one_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}TOPIC_REPLICATION_FACTOR", "0")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{ENV_PREFIX}TOPIC_REPLICATION_FACTOR: ")
