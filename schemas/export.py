"""Generates the published artifacts (JSON Schemas and asyncapi.yaml) from the models.

The files are committed; a test compares them with `render()`, so they cannot drift from the
code. `fulfillment schemas export` calls `export(Path(schemas.__file__).parent)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel

from schemas.asyncapi import asyncapi_document, schema_file
from schemas.inputs import INPUT_EVENT_CLASSES
from schemas.outputs import OUTPUT_EVENT_CLASSES

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
# A URN: the schemas have no canonical web address yet, and $id must be absolute.
SCHEMA_ID_PREFIX: Final = "urn:session-fulfillment:schema:"
ASYNCAPI_FILE: Final = "asyncapi.yaml"
_NOTICE: Final = "Generated from the schemas package by `fulfillment schemas export`; do not edit."


def event_json_schema(event_type: str, model: type[BaseModel], *, output: bool) -> dict[str, Any]:
    # Inputs are described as accepted (validation), outputs as sent (serialization).
    schema = model.model_json_schema(mode="serialization" if output else "validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID_PREFIX + event_type,
        "$comment": _NOTICE,
        **schema,
    }


def _json_text(document: dict[str, Any]) -> str:
    # Sorted keys and a fixed indent: the bytes depend on the models, not on dict order.
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every published file: path relative to the schemas package -> its text."""
    files = {
        schema_file(event_type): _json_text(event_json_schema(event_type, model, output=False))
        for event_type, model in INPUT_EVENT_CLASSES.items()
    }
    files |= {
        schema_file(event_type): _json_text(event_json_schema(event_type, model, output=True))
        for event_type, model in OUTPUT_EVENT_CLASSES.items()
    }
    body = yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
    files[ASYNCAPI_FILE] = f"# {_NOTICE}\n{body}"
    return files


def export(directory: Path) -> list[Path]:
    """Writes `render()` under `directory`, removing schema files no model produces any more."""
    files = render()
    for stale in (directory / "json").glob("*.schema.json"):
        if stale.relative_to(directory).as_posix() not in files:
            stale.unlink()
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
