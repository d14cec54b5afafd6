"""Each output names its cause's whole CloudEvents identity, as deduplication reads it."""

from __future__ import annotations

import orjson

import schemas
from tests.unit.core.builders import T0, decide, minutes, payment, row, snapshot


def test_an_output_caused_by_an_input_carries_the_input_s_source() -> None:
    result = decide(payment("pay-1", event_id="evt_1", source="billing"))

    wire = orjson.loads(row(result.emitted[0])[2])
    assert (wire["causationid"], wire["causationsource"]) == ("evt_1", "billing")


def test_a_timer_output_names_this_service_as_its_cause_s_source() -> None:
    first = decide(payment("pay-1", source="billing"))
    result = decide(
        payment("pay-2", at=T0 + minutes(20), source="billing"), state=snapshot(*first.inserted)
    )

    cancelled, created = (orjson.loads(row(e)[2]) for e in result.emitted)
    assert cancelled["type"] == schemas.SESSION_CANCELLED
    assert cancelled["causationid"] == first.emitted[0].id
    assert cancelled["causationsource"] == schemas.SOURCE
    assert created["causationsource"] == "billing"
