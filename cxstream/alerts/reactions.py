"""What a customer event causes besides state: alert messages and issue signals.

The rules run after the fold, on what it applied (``on_batch``): the fold knows nothing of
alerts, and the alert rules' own state (cooldowns) is carried from event to event here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.customer_rules import CustomerAlerts, Resolution
from cxstream.alerts.group_rules import Signal, signals_of
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.outputs import Alert
from cxstream.scoring.customer import CustomerState, StateRules, experience_is_low
from cxstream.scoring.fold import Applied, SourcedEvent


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
    """scoring.fold.Reactions for the alert rules."""

    def __init__(self, customer_alerts: CustomerAlerts, config: RulesConfig,
                 state_rules: StateRules, note_profile: ProfileListener | None = None,
                 note_value: ValueListener | None = None) -> None:
        self.customer_alerts = customer_alerts
        self.config = config
        self.state_rules = state_rules
        self.note_profile = note_profile
        self.note_value = note_value

    def on_batch(self, partition: int, applied: list[Applied]
                 ) -> tuple[dict[str, dict[str, Any]], list[Any]]:
        """Customer -> their alert state after the batch (only those that changed), and
        the outputs in event order. ``applied``: what the fold applied, in order."""
        changed: dict[str, dict[str, Any]] = {}  # customer -> alert state carried along
        outputs: list[Any] = []
        for change in applied:
            customer_id = change.after.customer_id
            before, after = change.before, change.after
            carried = changed.get(customer_id)
            if carried is not None:  # set by an earlier event of this batch
                before = before.model_copy(update={"alerts": carried})
                after = after.model_copy(update={"alerts": carried})
            if isinstance(change.item.event, CustomerProfile):
                reacted, produced = self.on_profile(partition, change.item, before, after)
            else:
                reacted, produced = self.on_applied(change.item, before, after)
            outputs += produced
            if reacted.alerts is not after.alerts:
                changed[customer_id] = reacted.alerts
        return changed, outputs

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

    def on_applied(self, item: SourcedEvent, before: CustomerState,
                   after: CustomerState) -> tuple[CustomerState, list[Any]]:
        event = item.event
        assert isinstance(event, Feedback | Interaction)
        topics = self.customer_alerts.topics_of(event)
        after, alerts = self.customer_alerts.react(event, before, after, topics)
        outputs: list[Any] = [AlertOut(status, alert, item.record_time)
                              for status, alert in alerts]
        if not alerts:  # an event that raises an alert does not also resolve one
            after, resolved = self.customer_alerts.settle(event, after)
            outputs += [ResolveOut(r) for r in resolved]
        return after, outputs + self._signals(event, topics, after)

    def _signals(self, event: Feedback | Interaction, topics: list[str],
                 state: CustomerState) -> list[Any]:
        segment = state.profile.segment if state.profile else None
        return [SignalOut(signal) for signal in
                signals_of(event, topics, segment, self.config, self.state_rules)]
