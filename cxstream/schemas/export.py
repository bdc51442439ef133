"""Write the contract's JSON Schemas for producers and consumers."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.outputs import Alert, AlertCase, SurveyRequest

#: Schema file name -> model, one per topic of the contract.
SCHEMAS: dict[str, type[BaseModel]] = {
    "cx.customers.schema.json": CustomerProfile,
    "cx.interactions.schema.json": Interaction,
    "cx.feedback.schema.json": Feedback,
    "cx.alerts.schema.json": Alert,
    "cx.alert-lifecycle.schema.json": AlertCase,
    "cx.survey-requests.schema.json": SurveyRequest,
}


def export_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema file per topic into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, model in SCHEMAS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = directory / file_name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
