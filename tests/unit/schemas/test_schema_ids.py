"""Deterministic ids: pinned, because every id ever published depends on them."""

from __future__ import annotations

from uuid import RFC_4122, UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas.ids import output_event_id_text


def test_the_project_namespace_never_changes() -> None:
    assert UUID("dc71d041-27be-4459-ac7e-76037ce1e0a0") == schemas.FULFILLMENT_NAMESPACE


def test_a_payment_always_maps_to_the_same_session_id() -> None:
    session_id = schemas.session_id_for_payment("pi_3QxY2b3c4d5e")

    assert session_id == UUID("c3a7967d-00d4-57d9-8266-5c972e244302")
    assert session_id.version == 5


def test_an_output_event_id_is_uuid5_of_causation_type_and_subject() -> None:
    event_id = schemas.output_event_id(
        "evt_1QxY2b3c4d", "session.created", "c3a7967d-00d4-57d9-8266-5c972e244302"
    )

    assert event_id == UUID("5a52796e-f2e4-589a-aff5-5ab81aa805e0")
    assert event_id.version == 5


def test_ids_differ_by_causation_type_and_subject() -> None:
    ids = {
        schemas.output_event_id("evt_1", "session.created", "s1"),
        schemas.output_event_id("evt_2", "session.created", "s1"),
        schemas.output_event_id("evt_1", "session.cancelled", "s1"),
        schemas.output_event_id("evt_1", "session.created", "s2"),
    }

    assert len(ids) == 4


def test_the_fast_text_form_is_the_same_id() -> None:
    for causation in ("evt_1", "", "a|b|c", "\u00e9v\u00e9nement"):
        expected = str(schemas.output_event_id(causation, "session.rejected", "cust"))
        assert output_event_id_text(causation, "session.rejected", "cust") == expected


@given(st.text(max_size=120))
def test_a_session_id_is_the_standard_librarys_uuid5_in_every_respect(payment_id: str) -> None:
    made = schemas.session_id_for_payment(payment_id)
    expected = uuid5(schemas.FULFILLMENT_NAMESPACE, "session|" + payment_id)

    assert made == expected
    assert (str(made), made.bytes, hash(made)) == (str(expected), expected.bytes, hash(expected))
    assert (made.version, made.variant, made.is_safe) == (5, RFC_4122, expected.is_safe)
    assert made == schemas.session_id_for_payment(payment_id)  # asked again: the same id
