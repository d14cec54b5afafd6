"""The committed JSON Schemas and asyncapi.yaml are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import schemas
from schemas.export import export, render

PACKAGE = Path(schemas.__file__).parent
RENDERED = render()
HINT = "run `fulfillment schemas export` and commit the result"


@pytest.mark.parametrize("relative", sorted(RENDERED))
def test_the_committed_file_is_what_the_models_generate(relative: str) -> None:
    path = PACKAGE / relative

    assert path.exists(), f"schemas/{relative} is missing: {HINT}"
    assert path.read_text(encoding="utf-8") == RENDERED[relative], (
        f"schemas/{relative} is out of date: {HINT}"
    )


def test_no_committed_schema_is_left_over_from_a_removed_type() -> None:
    committed = {p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "json").glob("*")}

    assert committed == {name for name in RENDERED if name.startswith("json/")}, HINT


def test_there_is_one_json_schema_per_event_type() -> None:
    assert sorted(name for name in RENDERED if name.startswith("json/")) == sorted(
        f"json/{event_type}.schema.json" for event_type in schemas.EVENT_TYPES
    )


def test_a_json_schema_describes_the_whole_cloud_event_in_2020_12() -> None:
    document = json.loads(RENDERED["json/payment.completed.schema.json"])

    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == "urn:session-fulfillment:schema:payment.completed"
    assert document["required"] == ["specversion", "id", "source", "type", "time", "data"]
    assert document["properties"]["type"]["const"] == "payment.completed"
    data = document["$defs"]["PaymentCompleted"]
    assert data["properties"]["amount_cents"] == {
        "exclusiveMinimum": 0,
        "maximum": 2**63 - 1,
        "title": "Amount Cents",
        "type": "integer",
    }
    assert data["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    assert "additionalProperties" not in document  # tolerant reader


def test_an_output_json_schema_requires_every_attribute_it_sends_and_nothing_else() -> None:
    created = json.loads(RENDERED["json/session.created.schema.json"])
    rejected = json.loads(RENDERED["json/session.rejected.schema.json"])

    assert created["additionalProperties"] is False
    assert "subject" in created["required"] and "causationid" in created["required"]
    assert created["properties"]["source"]["const"] == "session-fulfillment"
    assert "subject" not in rejected["properties"]
    assert rejected["$defs"]["SessionRejected"]["required"] == [
        "payment_id",
        "customer_id",
        "reason",
        "active_session_id",
    ]


def test_a_json_schema_file_is_indented_sorted_and_ends_with_a_newline() -> None:
    text = RENDERED["json/session.completed.schema.json"]

    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RENDERED["asyncapi.yaml"])
    return document


def test_the_asyncapi_document_lists_every_topic_by_its_default_name() -> None:
    document = asyncapi()

    assert document["asyncapi"] == "3.0.0"
    assert sorted(channel["address"] for channel in document["channels"].values()) == [
        "fulfillment.dlq",
        "mechanics.accepted",
        "payments.completed",
        "sessions.ended",
        "sessions.events",
    ]


def test_the_asyncapi_document_receives_inputs_and_sends_outputs() -> None:
    operations = asyncapi()["operations"]

    actions = {name: (op["action"], op["channel"]["$ref"]) for name, op in operations.items()}
    assert actions == {
        "receivePaymentCompleted": ("receive", "#/channels/paymentsCompleted"),
        "receiveMechanicAccepted": ("receive", "#/channels/mechanicsAccepted"),
        "receiveSessionEnded": ("receive", "#/channels/sessionsEnded"),
        "sendSessionEvents": ("send", "#/channels/sessionsEvents"),
        "sendDeadLetters": ("send", "#/channels/fulfillmentDlq"),
    }
    assert len(operations["sendSessionEvents"]["messages"]) == len(schemas.OUTPUT_TYPES)


def test_each_message_names_its_key_and_references_its_json_schema() -> None:
    messages = asyncapi()["components"]["messages"]

    assert messages["paymentCompleted"]["bindings"]["kafka"]["key"]["description"].startswith(
        "customer_id"
    )
    assert messages["mechanicAccepted"]["bindings"]["kafka"]["key"]["description"] == "session_id"
    assert messages["sessionEnded"]["bindings"]["kafka"]["key"]["description"] == "session_id"
    assert messages["sessionCompleted"]["bindings"]["kafka"]["key"]["description"].startswith(
        "customer_id"
    )
    for event_type in schemas.EVENT_TYPES:
        message = next(m for m in messages.values() if m["name"] == event_type)
        reference = message["payload"]["schema"]["$ref"]
        assert reference == f"json/{event_type}.schema.json"
        assert (PACKAGE / reference).exists()


def test_the_dead_letter_message_carries_the_original_bytes_and_the_error_headers() -> None:
    dead_letter = asyncapi()["components"]["messages"]["deadLetter"]

    assert dead_letter["headers"]["required"] == [
        "fulfillment-error-reason",
        "fulfillment-error-kind",
        "fulfillment-source-topic",
        "fulfillment-source-partition",
        "fulfillment-source-offset",
        "fulfillment-failed-at",
        "fulfillment-original-origin",
    ]
    kinds = dead_letter["headers"]["properties"]["fulfillment-error-kind"]["enum"]
    assert kinds == [kind.value for kind in schemas.DecodeErrorKind]
    assert dead_letter["bindings"]["kafka"]["key"]["description"].startswith("The original")


def test_export_writes_every_file_and_removes_stale_schemas(tmp_path: Path) -> None:
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "session.renamed.schema.json").write_text("{}\n")

    written = export(tmp_path)

    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(RENDERED)
    assert not (tmp_path / "json" / "session.renamed.schema.json").exists()
    assert (tmp_path / "asyncapi.yaml").read_text(encoding="utf-8") == RENDERED["asyncapi.yaml"]


def test_rendering_twice_gives_the_same_text() -> None:
    assert render() == RENDERED
