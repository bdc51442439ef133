"""What a customer event causes besides state: alert messages and issue signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.config import RulesConfig
from alerts.customer_rules import CustomerAlerts
from alerts.group_rules import Signal, signals_of
from schemas.events import Feedback, Interaction
from schemas.outputs import Alert
from scoring.customer import CustomerState, StateRules
from scoring.fold import SourcedEvent


@dataclass(frozen=True)
class AlertOut:
    status: str  # "new", "folded" (cooldown update) or "replayed" (sent again)
    alert: Alert
    source_time: float | None = None  # Kafka record time of the input that raised it


@dataclass(frozen=True)
class SignalOut:
    signal: Signal


class AlertReactions:
    """scoring.fold.Reactions for the alert rules."""

    def __init__(self, customer_alerts: CustomerAlerts, config: RulesConfig,
                 state_rules: StateRules) -> None:
        self.customer_alerts = customer_alerts
        self.config = config
        self.state_rules = state_rules

    def on_applied(self, kind: str, item: SourcedEvent, before: CustomerState,
                   after: CustomerState) -> tuple[CustomerState, list[Any]]:
        event = item.event
        assert isinstance(event, Feedback | Interaction)
        topics = self.customer_alerts.topics_of(event)
        after, alerts = self.customer_alerts.react(kind, item.offset, event, before, after,
                                                   topics)
        outputs: list[Any] = [AlertOut(status, alert, item.record_time)
                              for status, alert in alerts]
        return after, outputs + self._signals(event, topics, after)

    def on_replayed(self, kind: str, item: SourcedEvent, state: CustomerState) -> list[Any]:
        event = item.event
        assert isinstance(event, Feedback | Interaction)
        outputs: list[Any] = [AlertOut(status, alert) for status, alert in
                              self.customer_alerts.replayed(kind, item.offset, state)]
        return outputs + self._signals(event, self.customer_alerts.topics_of(event), state)

    def _signals(self, event: Feedback | Interaction, topics: list[str],
                 state: CustomerState) -> list[Any]:
        segment = state.profile.segment if state.profile else None
        return [SignalOut(signal) for signal in
                signals_of(event, topics, segment, self.config, self.state_rules)]
