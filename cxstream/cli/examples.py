"""One example of each input event and the alert the rules raise on them: the examples of
README.md and docs/contract.md (``cxstream schemas examples DIR``; a test keeps them
current)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import load_rules
from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.examples import FEEDBACK, INTERACTION, PROFILE
from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    apply_feedback,
    apply_interaction,
    apply_profile,
)
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.value_bands import ValueBands

#: when the example alert is raised (fixed, so the example is the same on every run)
RAISED_AT = datetime(2026, 12, 1, 9, 42, 7, tzinfo=UTC)

def example_alert() -> dict[str, Any]:
    """The alert the shipped rules raise for FEEDBACK after PROFILE and INTERACTION."""
    rules = StateRules()
    bands = ValueBands({}, 0.2, fixed_threshold=50_000.0)  # this customer is not high-value
    engine = CustomerAlerts(load_rules(), load_tagger(),
                            lambda state: customer_flags(state, bands, rules), lambda: RAISED_AT)
    answer = Feedback.model_validate(FEEDBACK)
    state = apply_profile(CustomerState(customer_id=answer.customer_id),
                          CustomerProfile.model_validate(PROFILE))
    state = apply_interaction(state, Interaction.model_validate(INTERACTION), rules)
    _, [(_, alert)] = engine.react(answer, state, apply_feedback(state, answer, rules),
                                   engine.topics_of(answer))
    return alert.model_dump(mode="json")


def examples() -> dict[str, dict[str, Any]]:
    """File name -> example."""
    return {"cx.customers.json": PROFILE, "cx.interactions.json": INTERACTION,
            "cx.feedback.json": FEEDBACK, "cx.alerts.json": example_alert()}


def write_examples(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, example in examples().items():
        path = directory / name
        path.write_text(json.dumps(example, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written
