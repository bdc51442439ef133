"""The exported JSON Schemas and the pydantic models say the same thing: the examples are
valid, and on a corpus of good and bad events a JSON Schema validator and the models
accept and refuse the very same ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ValidationError

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.examples import FEEDBACK, INTERACTION, PROFILE
from cxstream.schemas.export import CONTRACT_VERSION, SCHEMAS, json_schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
MODELS: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "cx.customers.schema.json": (CustomerProfile, PROFILE),
    "cx.interactions.schema.json": (Interaction, INTERACTION),
    "cx.feedback.schema.json": (Feedback, FEEDBACK),
}


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((DOCS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def model_accepts(model: type[BaseModel], event: Any) -> bool:
    try:
        model.model_validate_json(json.dumps(event))
    except ValidationError:
        return False
    return True


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    event = dict(base)
    for name, value in fields.items():
        if value is DROP:
            event.pop(name, None)
        else:
            event[name] = value
    return event


DROP = object()
TIMES = ["2026-12-01T09:41:58+00:00", "2026-12-01T09:41:58Z", "2026-12-01T09:41:58.123+02:00",
         "2026-12-01T09:41:58.123456-05:30", "2026-02-28T23:59:59+14:00",
         # refused by both: no seconds, a space for the T, no offset, not a time, a
         # number, impossible dates and times
         "2026-12-01T09:41+00:00", "2026-12-01 09:41:58+00:00", "2026-12-01T09:41:58",
         "yesterday", 1764582118, "2026-13-01T09:41:58+00:00", "2026-02-30T10:00:00Z",
         "2026-12-01T24:00:00Z", "2026-12-01T09:41:58+0000", "", None]
COMMON_BAD = [{"event_id": ""}, {"event_id": "x" * 129}, {"customer_id": 17},
              {"customer_id": DROP}, {"channel": ""}, {"touchpoint": None},
              {"event_id": DROP}]
CORPUS: dict[str, list[dict[str, Any]]] = {
    "cx.feedback.schema.json": [
        *[changed(FEEDBACK, occurred_at=t) for t in TIMES],
        *[changed(FEEDBACK, survey=s, score=n) for s in ("nps", "csat", "ces")
          for n in (-1, 0, 1, 5, 6, 7, 8, 10, 11)],
        changed(FEEDBACK, score=9.5), changed(FEEDBACK, score="9"),
        changed(FEEDBACK, score=True), changed(FEEDBACK, score=DROP),
        changed(FEEDBACK, survey="ces7"), changed(FEEDBACK, survey=DROP),
        changed(FEEDBACK, language="en-GB"), changed(FEEDBACK, language="english!"),
        changed(FEEDBACK, language=None), changed(FEEDBACK, comment="x" * 10_001),
        changed(FEEDBACK, comment=None), changed(FEEDBACK, handled_by="agent-7"),
        changed(FEEDBACK, unknown_field={"kept": "ignored"}),
        *[changed(FEEDBACK, **{k: v}) for case in COMMON_BAD for k, v in case.items()],
    ],
    "cx.interactions.schema.json": [
        *[changed(INTERACTION, occurred_at=t) for t in TIMES],
        changed(INTERACTION, outcome="lost"), changed(INTERACTION, outcome=None),
        changed(INTERACTION, outcome=DROP), changed(INTERACTION, sentiment=1.5),
        changed(INTERACTION, sentiment=-1), changed(INTERACTION, sentiment="0.2"),
        changed(INTERACTION, wait_seconds=-3), changed(INTERACTION, wait_seconds=90),
        changed(INTERACTION, wait_seconds="90"), changed(INTERACTION, amount=-12.5),
        changed(INTERACTION, amount="12"), changed(INTERACTION, text="x" * 10_000),
        changed(INTERACTION, text="x" * 10_001), changed(INTERACTION, handled_by=""),
        *[changed(INTERACTION, **{k: v}) for case in COMMON_BAD for k, v in case.items()],
    ],
    "cx.customers.schema.json": [
        *[changed(PROFILE, updated_at=t) for t in TIMES],
        changed(PROFILE, value=0), changed(PROFILE, value=-1), changed(PROFILE, value="100"),
        changed(PROFILE, value=None), changed(PROFILE, segment=""),
        changed(PROFILE, segment="s" * 129), changed(PROFILE, owner="am.b"),
        changed(PROFILE, region=None), changed(PROFILE, customer_id=DROP),
        changed(PROFILE, customer_id=""),
    ],
}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_examples_are_valid(name: str) -> None:
    model, example = MODELS[name]
    schema = validator(name)
    for found in schema.schema["examples"]:
        schema.validate(found)
        assert model_accepts(model, found)
    assert example in schema.schema["examples"]


def test_the_alert_example_is_a_valid_alert() -> None:
    schema = validator("cx.alerts.schema.json")
    (example,) = schema.schema["examples"]
    schema.validate(example)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_validator_and_the_models_agree_on_the_corpus(name: str) -> None:
    model, _ = MODELS[name]
    schema = validator(name)
    verdicts = []
    for event in CORPUS[name]:
        by_schema, by_model = schema.is_valid(event), model_accepts(model, event)
        assert by_schema == by_model, (event, {"schema": by_schema, "model": by_model})
        verdicts.append(by_model)
    assert any(verdicts) and not all(verdicts)  # the corpus has both kinds


@given(st.sampled_from(["nps", "csat", "ces"]), st.integers(-3, 13))
def test_score_ranges_agree(survey: str, score: int) -> None:
    event = changed(FEEDBACK, survey=survey, score=score)
    assert validator("cx.feedback.schema.json").is_valid(event) == model_accepts(
        Feedback, event)


def test_every_schema_names_the_contract_version_and_describes_its_fields() -> None:
    for name in SCHEMAS:
        schema = json_schema(name)
        assert schema["$id"] == f"urn:cxstream:contract:{CONTRACT_VERSION}:" \
                                f"{name.removesuffix('.schema.json')}"
    for name in MODELS:
        schema = json_schema(name)
        missing = [field for field, spec in schema["properties"].items()
                   if not spec.get("description")]
        assert not missing, (name, missing)
