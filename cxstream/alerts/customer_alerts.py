"""The customer rules at work: after each event, every rule of alerts.customer_rules is
asked whether it fires; the triggers become one alert message at most (a new alert, or an
update of the customer's open alert while it cools down), and open alerts whose rules no
longer hold are resolved (``settle``).

Shape: (event, customer state before and after it) -> triggers -> one alert message per
event at most, with the count of triggers folded into it and the latest evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cxstream.alerts.building import alert_id, build_alert, customer_context, route, team_of
from cxstream.alerts.comment_tags import TopicTagger
from cxstream.alerts.config import RulesConfig
from cxstream.alerts.cooldowns import OpenAlert, open_alerts, with_open_alerts
from cxstream.alerts.customer_rules import (
    ADDED_RULES,
    CUSTOMER_RULES,
    RULE_BY_NAME,
    RuleFacts,
    Trigger,
    high_value_at_risk_trigger,
)
from cxstream.schemas.events import Feedback, Interaction
from cxstream.schemas.outputs import Alert
from cxstream.scoring.customer import CustomerState

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


#: the prefix of customer alert ids: one cause of a customer, one alert, whatever rules fire
CUSTOMER_ALERT = "customer"


@dataclass(frozen=True)
class Cause:
    """What an alert is raised for: an event of the customer, or a change of their value
    (their profile, or the band thresholds) while their experience is low."""

    customer_id: str
    at: datetime  # event time: the event's, or the customer's latest experience
    cause_id: str  # deterministic: the same cause gives the same alert id
    comment: str | None = None
    language: str | None = None

    @staticmethod
    def of_event(event: Feedback | Interaction) -> Cause:
        if isinstance(event, Feedback):
            return Cause(event.customer_id, event.occurred_at, event.event_id, event.comment,
                         event.language)
        return Cause(event.customer_id, event.occurred_at, event.event_id, event.text)


@dataclass(frozen=True)
class Resolution:
    """An open alert whose rule no longer holds for the customer: resolved by itself."""

    alert_id: str
    rule: str
    customer_id: str
    reason: str
    at: datetime


def recovered(rule: str, event: Feedback | Interaction | None, report: dict[str, Any],
              config: RulesConfig) -> str | None:
    """Why an open alert of ``rule`` no longer holds after ``event`` (None: it holds, or
    the rule is no longer known)."""
    found = RULE_BY_NAME.get(rule)
    if found is None:
        return None
    return found.recovered(event, report, config.rule_settings(rule))


def auto_resolves(rule: str, config: RulesConfig) -> bool:
    """Whether alerts of ``rule`` resolve by themselves (a rule no longer known: no)."""
    return rule in RULE_BY_NAME and bool(config.rule_settings(rule).auto_resolve)


def settle(state: CustomerState, event: Feedback | Interaction | None,
           report: dict[str, Any], config: RulesConfig
           ) -> tuple[CustomerState, list[Resolution]]:
    """Resolve the customer's open alerts whose every rule has recovered, and end their
    cooldowns, so the next trigger raises a new alert. ``state``: after the event."""
    cooling = open_alerts(state)
    if not cooling:
        return state, []
    at = event.occurred_at if event is not None else state.last_event_at
    if at is None:
        return state, []
    by_id: dict[str, list[str]] = {}
    for rule, alert in cooling.items():
        if at < alert.until:  # still cooling: still open on the customer
            by_id.setdefault(alert.alert_id, []).append(rule)
    done: list[Resolution] = []
    for alert_key, rules in by_id.items():
        if not all(auto_resolves(rule, config) for rule in rules):
            continue
        if any(at <= cooling[rule].first_event_time for rule in rules):
            continue  # not later than what raised it
        reasons = [recovered(rule, event, report, config) for rule in rules]
        if all(reasons):
            done.append(Resolution(alert_key, rules[0], state.customer_id,
                                   "; ".join(r for r in reasons if r), at))
            for rule in rules:
                del cooling[rule]
    if not done:
        return state, []
    return with_open_alerts(state, cooling), done


def wall_clock() -> datetime:
    """The customer rules' clock in a worker: now, for event age and alert times."""
    return datetime.now(UTC)


class ReplayClock:
    """The customer rules' clock in a replay: the record time reached (cli.backtest)."""

    def __init__(self) -> None:
        self.now = 0.0  # epoch seconds

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class CustomerAlerts:
    """Evaluates the customer rules after each event and keeps the cooldowns in state."""

    def __init__(self, config: RulesConfig, tagger: TopicTagger,
                 report_of: Callable[[CustomerState], dict[str, Any]],
                 now: Callable[[], datetime]) -> None:
        self.config = config
        #: every rule with its section of ``config``, looked up once (not per event)
        self.rules = tuple((rule, config.rule_settings(rule.name)) for rule in CUSTOMER_RULES)
        #: the added rules that are on, for the core's quick test (customer_core)
        self.added_on = tuple((rule, settings) for rule, settings in self.rules
                              if rule in ADDED_RULES and settings.enabled)
        self.tagger = tagger
        self.report_of = report_of
        self.now = now

    def topics_of(self, event: Any) -> list[str]:
        if isinstance(event, Feedback):
            return self.tagger.tag(event.comment, event.language)
        if isinstance(event, Interaction):
            return self.tagger.tag(event.text)
        return []

    def react(self, event: Feedback | Interaction, before: CustomerState,
              after: CustomerState, topics: list[str]
              ) -> tuple[CustomerState, list[tuple[str, Alert]]]:
        """The state with cooldowns updated, and ("new" | "folded", alert) if any fired."""
        if self.now() - event.occurred_at > timedelta(hours=self.config.max_event_age_hours):
            return after, []  # too old to act on
        return self.react_from(event, self.report_of(before).get("quadrant"), after, topics)

    def react_from(self, event: Feedback | Interaction, quadrant_before: str | None,
                   after: CustomerState, topics: list[str]
                   ) -> tuple[CustomerState, list[tuple[str, Alert]]]:
        """``react`` once the event is known to be recent enough, with the quadrant the
        customer was in before it (all that the rules read of the state before)."""
        report_after = self.report_of(after)
        facts = RuleFacts(event, quadrant_before, report_after, topics, after)
        triggers = [trigger for rule, settings in self.rules
                    if (trigger := rule.fires(facts, settings)) is not None]
        if not triggers:
            return after, []
        return self._raise(triggers, Cause.of_event(event), after, report_after, topics)

    def settle(self, event: Feedback | Interaction | None, state: CustomerState
               ) -> tuple[CustomerState, list[Resolution]]:
        """Open alerts of the customer resolved by ``event`` (or by their value changing:
        ``event`` None); events too old to act on resolve nothing."""
        if not open_alerts(state):
            return state, []
        at = event.occurred_at if event is not None else state.last_event_at
        if at is None or self.now() - at > timedelta(hours=self.config.max_event_age_hours):
            return state, []
        return settle(state, event, self.report_of(state), self.config)

    def react_to_value(self, cause_id: str, before: CustomerState, after: CustomerState,
                       report_before: dict[str, Any], only_new: bool = False
                       ) -> tuple[CustomerState, list[tuple[str, Alert]]]:
        """The high-value-at-risk rule after a change of the customer's value: their own
        profile (``before`` -> ``after``), or the band thresholds (``report_before`` was
        made with the old bands). ``only_new``: no update of an open alert."""
        if after.last_event_at is None or self.now() - after.last_event_at > timedelta(
                hours=self.config.max_event_age_hours):
            return after, []  # no recent experience to act on
        report_after = self.report_of(after)
        trigger = high_value_at_risk_trigger(
            report_before.get("quadrant"), report_after.get("quadrant"), report_after,
            after.customer_id, self.config.high_value_at_risk)
        if trigger is None:
            return after, []
        at = after.last_event_at
        cooling = open_alerts(after)
        current = cooling.get(trigger.rule)
        if only_new and current is not None and at < current.until:
            return after, []
        # one unhappy customer, one alert: an open alert of another rule (a detractor
        # answered while the customer was not yet in the band) takes this trigger in
        open_now = [alert for alert in cooling.values() if at < alert.until]
        fold_into = max(open_now, key=lambda alert: alert.created_at) if open_now else None
        cause = Cause(after.customer_id, at, cause_id)
        return self._raise([trigger], cause, after, report_after, [], fold_into)

    def _raise(self, triggers: list[Trigger], cause: Cause,
               state: CustomerState, report: dict[str, Any], topics: list[str],
               fold_into: OpenAlert | None = None
               ) -> tuple[CustomerState, list[tuple[str, Alert]]]:
        status, alert, state = self._raise_or_fold(triggers, cause, state, report, topics,
                                                   fold_into)
        return state, [(status, alert)]

    def _raise_or_fold(self, triggers: list[Trigger], cause: Cause,
                       state: CustomerState, report: dict[str, Any], topics: list[str],
                       fold_into: OpenAlert | None = None
                       ) -> tuple[str, Alert, CustomerState]:
        at = cause.at
        cooling = open_alerts(state)
        active = [cooling[t.rule] for t in triggers
                  if t.rule in cooling and at < cooling[t.rule].until]
        if not active and fold_into is not None:
            active = [fold_into]
        lead = triggers[0]
        severity = max((t.severity for t in triggers), key=SEVERITY_RANK.__getitem__)
        if active:
            target = active[0]
            key, created, status = target.alert_id, target.created_at, "folded"
            # one counter per alert, whatever rules folded into it: each rule's entry of
            # this alert carries the alert's count, and the next update takes the highest
            # plus one (a count per rule gave two updates the same number, so the same id)
            same = [alert for alert in cooling.values() if alert.alert_id == key]
            occurrences = max(alert.occurrences for alert in same) + 1
            severity = max([severity, *(alert.severity for alert in same)],
                           key=SEVERITY_RANK.__getitem__)
        else:
            # not the lead rule's: which rules fire can depend on the value bands, which may
            # differ when the event is read again by another worker after a crash, and the
            # same cause must keep its one alert (and its id)
            key = alert_id(CUSTOMER_ALERT, cause.customer_id, cause.cause_id)
            occurrences, created, status = 1, self.now(), "new"
        for rule, entry in list(cooling.items()):
            if entry.alert_id == key:  # every rule of this alert, fired now or before
                cooling[rule] = entry.model_copy(
                    update={"occurrences": occurrences, "severity": severity})
        for trigger in triggers:
            current = cooling.get(trigger.rule)
            if current is None or (current.alert_id != key and at >= current.until):
                cooling[trigger.rule] = OpenAlert(
                    alert_id=key, rule=trigger.rule, severity=severity,
                    until=at + timedelta(hours=trigger.cooldown_hours),
                    occurrences=occurrences, first_event_time=at, created_at=created)
        alert = build_alert(
            rule=lead.rule if status == "new" else next(
                (a.rule for a in active if a.alert_id == key), lead.rule),
            severity=severity,  # type: ignore[arg-type]
            alert_key=key, customer_id=cause.customer_id,
            segment=state.profile.segment if state.profile else None,
            owner=route(state, self.config.routing),
            summary=lead.summary if occurrences == 1
            else f"{lead.summary} ({occurrences} triggers folded into this alert)",
            reason={**lead.reason, "rules_fired": [t.rule for t in triggers],
                    "occurrences": occurrences},
            context=customer_context(state, report, self.config, cause.comment, topics,
                                     cause.language),
            event_time=at, created_at=created, occurrences=occurrences, config=self.config,
            team=team_of(state, self.config.routing))
        return status, alert, with_open_alerts(state, cooling)
