"""Every retry is counted under its loop and its kind: `transient` when the failure is an
outage, `bug` for anything else; both kinds are exposed at zero before the first retry."""

from __future__ import annotations

import pytest

from service.adapters.retry import count_retry
from service.observe.metrics import REGISTRY, RETRY_KINDS, RETRY_LOOPS

NAME = "fulfillment_retries_total"


def counted(loop: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(NAME, {"loop": loop, "kind": kind})
    assert value is not None, f"{NAME}{{loop={loop}, kind={kind}}} is not exposed"
    return value


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError("down"), "transient"),
        (TimeoutError(), "transient"),
        (ValueError("a defect"), "bug"),
        (None, "bug"),
    ],
    ids=["refused connection", "timeout", "defect", "no exception"],
)
def test_a_retry_is_counted_as_transient_for_an_outage_and_as_a_bug_otherwise(
    error: BaseException | None, kind: str
) -> None:
    other = "bug" if kind == "transient" else "transient"
    before, before_other = counted("relay", kind), counted("relay", other)
    count_retry("relay", error)
    assert counted("relay", kind) == before + 1
    assert counted("relay", other) == before_other


def test_every_loop_and_kind_of_retries_is_exposed_from_the_start() -> None:
    assert set(RETRY_KINDS) == {"transient", "bug"}
    for loop in RETRY_LOOPS:
        for kind in RETRY_KINDS:
            counted(loop, kind)
