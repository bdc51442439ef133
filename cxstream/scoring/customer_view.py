"""What the API and alerts show of a customer: state plus value band and quadrant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    experience_is_low,
    low_score_reasons,
    negative_signal_count,
    quadrant_of,
)
from cxstream.scoring.value_bands import ValueBands


def customer_flags(state: CustomerState, bands: ValueBands,
                   rules: StateRules) -> dict[str, Any]:
    """What the rules derive from a customer's state: high-value flags, quadrant, signals
    (no copy of the state itself: the alert rules read only these)."""
    flags: dict[str, bool | None] = {"overall": None, "in_segment": None, "high_value": None}
    if state.profile is not None:
        flags = bands.flags(state.profile.segment, state.profile.value)
    signals = negative_signal_count(state, rules)
    reasons = low_score_reasons(state, rules, signals)
    return {
        "high_value": flags["high_value"],
        "high_value_overall": flags["overall"],
        "high_value_in_segment": flags["in_segment"],
        "quadrant": quadrant_of(flags["high_value"], experience_is_low(state, rules, reasons)),
        "negative_signals_in_window": signals,
        "low_experience_reasons": reasons,
    }


def customer_report(state: CustomerState, bands: ValueBands,
                    rules: StateRules) -> dict[str, Any]:
    """The customer's state with derived fields: high-value flags, quadrant, signals."""
    report = state.model_dump(mode="json", exclude={"seen", "counted"})
    report.update(customer_flags(state, bands, rules))
    return report


class RecentFlags:
    """customer_flags with the current value bands, remembered for the last few states by
    identity (and the bands they used).

    Each event needs the flags of the state before it, which is usually the state after
    the customer's previous event: computed once instead of twice."""

    KEPT = 8

    def __init__(self, bands: Callable[[], ValueBands], rules: StateRules) -> None:
        self.bands = bands
        self.rules = rules
        self.recent: list[tuple[CustomerState, ValueBands, dict[str, Any]]] = []

    def __call__(self, state: CustomerState) -> dict[str, Any]:
        bands = self.bands()
        for known, known_bands, report in self.recent:
            if known is state and known_bands is bands:
                return report
        report = customer_flags(state, bands, self.rules)
        self.recent = [(state, bands, report), *self.recent[: self.KEPT - 1]]
        return report
