"""What a customer event causes besides state: alert messages and issue signals.

The worker's core (alerts.customer_core) applies the customer rules to the events it folds;
``AlertReactions`` holds what they need (the rules, their settings, where a new value
goes) and the rules of a new profile (``on_profile``). The same rules over the contract's
models, event by event, are the reference the core is checked against
(testkit/reference/reactions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.customer_alerts import CustomerAlerts, Resolution
from cxstream.alerts.group_rules import Signal
from cxstream.schemas.outputs import Alert
from cxstream.scoring.customer import CustomerState, StateRules, experience_is_low
from cxstream.scoring.fold import SourcedEvent


@dataclass(frozen=True)
class AlertOut:
    status: str  # "new" or "folded" (cooldown update)
    alert: Alert
    source_time: float | None = None  # Kafka record time of the input that raised it


@dataclass(frozen=True)
class SignalOut:
    signal: Signal


@dataclass(frozen=True)
class ResolveOut:
    """An alert resolved by itself: its cause is gone (alerts.customer_rules.settle)."""

    resolution: Resolution


#: told of every profile folded, before the rules look at it: (partition, state after it)
ProfileListener = Callable[[int, CustomerState], None]
#: the same as plain values: (partition, customer, segment, value, experience is low)
ValueListener = Callable[[int, str, str, float, bool | None], None]


class AlertReactions:
    """The customer rules' settings and state, for the worker's core."""

    def __init__(self, customer_alerts: CustomerAlerts, config: RulesConfig,
                 state_rules: StateRules, note_profile: ProfileListener | None = None,
                 note_value: ValueListener | None = None) -> None:
        self.customer_alerts = customer_alerts
        self.config = config
        self.state_rules = state_rules
        self.note_profile = note_profile
        self.note_value = note_value

    def on_profile(self, partition: int, item: SourcedEvent, before: CustomerState,
                   after: CustomerState) -> tuple[CustomerState, list[Any]]:
        if after.profile is None:
            return after, []
        if after.profile == before.profile:  # read again: what it caused is in Kafka
            return after, []
        low = experience_is_low(after, self.state_rules)
        # the bands before this profile, for the quadrant the customer was in
        report_before = self.customer_alerts.report_of(before) if low else {}
        profile = after.profile
        # the bands from now on count the new value
        if self.note_value is not None:
            self.note_value(partition, after.customer_id, profile.segment, profile.value, low)
        elif self.note_profile is not None:
            self.note_profile(partition, after)
        alerts: list[tuple[str, Alert]] = []
        if low:
            cause = f"profile:{profile.updated_at.isoformat()}:{profile.value:g}"
            after, alerts = self.customer_alerts.react_to_value(cause, before, after,
                                                                report_before)
        if alerts:
            return after, [AlertOut(status, alert, item.record_time) for status, alert in alerts]
        # a value that left the high band, or a profile of a customer doing well again
        after, resolved = self.customer_alerts.settle(None, after)
        return after, [ResolveOut(r) for r in resolved]
