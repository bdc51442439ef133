"""Write the contract's JSON Schemas for producers and consumers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.examples import FEEDBACK, INTERACTION, PROFILE
from cxstream.schemas.outputs import Alert, AlertCase, SurveyRequest

#: the contract's version: in each schema's $id and in the cx.contract.version header of
#: every output message (docs/contract.md)
CONTRACT_VERSION = "1"
#: schema file name -> example messages of that topic
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "cx.customers.schema.json": [PROFILE],
    "cx.interactions.schema.json": [INTERACTION],
    "cx.feedback.schema.json": [FEEDBACK],
}

#: Schema file name -> model, one per topic of the contract.
SCHEMAS: dict[str, type[BaseModel]] = {
    "cx.customers.schema.json": CustomerProfile,
    "cx.interactions.schema.json": Interaction,
    "cx.feedback.schema.json": Feedback,
    "cx.alerts.schema.json": Alert,
    "cx.alert-lifecycle.schema.json": AlertCase,
    "cx.survey-requests.schema.json": SurveyRequest,
}


def schema_id(file_name: str) -> str:
    """The $id of a topic's schema: a URN naming the contract version and the topic."""
    return f"urn:cxstream:contract:{CONTRACT_VERSION}:{file_name.removesuffix('.schema.json')}"


def json_schema(file_name: str,
                examples: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The JSON Schema of one topic (``examples``: more examples by file name)."""
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                              "$id": schema_id(file_name)}
    schema.update(SCHEMAS[file_name].model_json_schema(mode="validation"))
    found = [*EXAMPLES.get(file_name, []), *(examples or {}).get(file_name, [])]
    if found:
        schema["examples"] = found
    return schema


def export_schemas(directory: Path,
                   examples: dict[str, list[dict[str, Any]]] | None = None) -> list[Path]:
    """Write one JSON Schema file per topic into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name in SCHEMAS:
        schema = json_schema(file_name, examples)
        path = directory / file_name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
