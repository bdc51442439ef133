"""What the API and alerts show of a customer: state plus value band and quadrant."""

from __future__ import annotations

from typing import Any

from scoring.customer import (
    CustomerState,
    StateRules,
    low_score_reasons,
    negative_signal_count,
    quadrant,
)
from scoring.value_bands import ValueBands


def customer_report(state: CustomerState, bands: ValueBands,
                    rules: StateRules) -> dict[str, Any]:
    """The customer's state with derived fields: high-value flags, quadrant, signals."""
    flags: dict[str, bool | None] = {"overall": None, "in_segment": None, "high_value": None}
    if state.profile is not None:
        flags = bands.flags(state.profile.segment, state.profile.value)
    report = state.model_dump(mode="json", exclude={"seen", "counted"})
    report.update(
        high_value=flags["high_value"],
        high_value_overall=flags["overall"],
        high_value_in_segment=flags["in_segment"],
        quadrant=quadrant(state, flags["high_value"], rules),
        negative_signals_in_window=negative_signal_count(state, rules),
        low_experience_reasons=low_score_reasons(state, rules),
    )
    return report
