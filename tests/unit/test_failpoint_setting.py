"""FULFILLMENT_FAILPOINT_CUSTOMERS: off when unset, a comma-separated or JSON list of customer
UUIDs when set, and one line naming the variable when it is not."""

from __future__ import annotations

from uuid import UUID

import pytest

from service.config.settings import ConfigurationError, Settings, load_settings

ALICE = "6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41"
BOB = "0b7e3c52-5d1a-4f7e-8c11-93a0d2e6b7f4"


def test_the_failpoint_is_off_when_unset() -> None:
    assert Settings().failpoint_customers == frozenset()


@pytest.mark.parametrize(
    "value", [f"{ALICE},{BOB}", f" {ALICE} , {BOB} ,", f'["{ALICE}", "{BOB}"]']
)
def test_the_failpoint_names_customers_as_a_comma_separated_or_json_list(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULFILLMENT_FAILPOINT_CUSTOMERS", value)
    assert load_settings().failpoint_customers == frozenset({UUID(ALICE), UUID(BOB)})


def test_a_failpoint_that_is_not_a_uuid_list_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FULFILLMENT_FAILPOINT_CUSTOMERS", "alice")
    with pytest.raises(ConfigurationError, match=r"^FULFILLMENT_FAILPOINT_CUSTOMERS: "):
        load_settings()
