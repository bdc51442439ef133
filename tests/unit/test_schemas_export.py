"""JSON Schema export for producers."""

from __future__ import annotations

import json
from pathlib import Path

from cxstream.schemas.export import SCHEMAS, export_schemas


def test_export_writes_one_schema_per_topic(tmp_path: Path) -> None:
    paths = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(SCHEMAS)
    feedback = json.loads((tmp_path / "out" / "cx.feedback.schema.json").read_text())
    assert set(feedback["required"]) == {"event_id", "customer_id", "occurred_at", "survey",
                                         "score", "channel", "touchpoint"}
    assert feedback["properties"]["survey"]["enum"] == ["nps", "csat", "ces"]
    assert feedback["properties"]["occurred_at"]["format"] == "date-time"
    assert feedback["$schema"].endswith("2020-12/schema")
