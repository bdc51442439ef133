"""Customer rules: detractor, high-value customer at risk, negative social post.

Shape: (event, customer state before and after it) -> triggers -> one alert message per
event at most: a new alert, or an update of the customer's open alert (cooldown), with
the count of triggers folded into it and the latest evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cxstream.alerts.building import alert_id, build_alert, customer_context, route, team_of
from cxstream.alerts.comment_tags import COMPLAINT, TopicTagger
from cxstream.alerts.config import (
    DetractorRule,
    HighValueAtRiskRule,
    RulesConfig,
    SocialNegativeRule,
)
from cxstream.alerts.cooldowns import OpenAlert, open_alerts, with_open_alerts
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
class Trigger:
    rule: str
    severity: str
    summary: str
    reason: dict[str, Any]
    cooldown_hours: float


def detractor_trigger(event: Feedback, high_value: bool | None,
                      rule: DetractorRule) -> Trigger | None:
    """NPS 0-6 (and very low CSAT or CES, as configured); critical for high-value."""
    limit = {"nps": rule.nps_max, "csat": rule.csat_max, "ces": rule.ces_max}[event.survey]
    if not rule.enabled or limit is None or event.score > limit:
        return None
    severity = "critical" if high_value else rule.severity
    return Trigger(
        rule="detractor", severity=severity, cooldown_hours=rule.cooldown_hours,
        summary=f"{event.survey.upper()} {event.score} from {event.customer_id} "
                f"about {event.touchpoint} ({event.channel})",
        reason={"survey": event.survey, "score": event.score, "threshold": limit,
                "touchpoint": event.touchpoint, "channel": event.channel,
                "high_value": high_value, "event_id": event.event_id},
    )


def high_value_at_risk_trigger(quadrant_before: str | None, quadrant_after: str | None,
                               report: dict[str, Any], customer_id: str,
                               rule: HighValueAtRiskRule) -> Trigger | None:
    """A high-value customer enters the at-risk quadrant (survey or not)."""
    if not (rule.enabled and report.get("high_value") and quadrant_after == "at-risk"
            and quadrant_before != "at-risk"):
        return None
    reasons = report.get("low_experience_reasons", [])
    return Trigger(
        rule="high_value_at_risk", severity=rule.severity, cooldown_hours=rule.cooldown_hours,
        summary=f"High-value customer {customer_id} is at risk: {'; '.join(reasons)}",
        reason={"low_experience_reasons": reasons, "quadrant_before": quadrant_before,
                "quadrant": quadrant_after,
                "negative_signals_in_window": report.get("negative_signals_in_window")},
    )


def social_negative_trigger(event: Interaction, topics: list[str],
                            rule: SocialNegativeRule) -> Trigger | None:
    """A post on the social channel with negative sentiment (or complaint wording)."""
    if not rule.enabled or event.channel != "social":
        return None
    if event.sentiment is not None:
        negative = event.sentiment <= rule.sentiment_max
    else:
        negative = COMPLAINT in topics
    if not negative:
        return None
    issues = [topic for topic in topics if topic != COMPLAINT]
    return Trigger(
        rule="social_negative", severity=rule.severity, cooldown_hours=rule.cooldown_hours,
        summary=f"Negative social post by {event.customer_id}"
                + (f" about {', '.join(issues)}" if issues else ""),
        reason={"sentiment": event.sentiment, "threshold": rule.sentiment_max,
                "topics": topics, "text": (event.text or "")[:500],
                "event_id": event.event_id},
    )


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
    """Why an open alert of ``rule`` no longer holds after ``event`` (None: it holds)."""
    if rule == "detractor" and isinstance(event, Feedback):
        detractor = config.detractor
        floor = {"nps": detractor.recovered_nps_min, "csat": detractor.recovered_csat_min,
                 "ces": detractor.recovered_ces_min}[event.survey]
        if event.score >= floor:
            return f"later {event.survey.upper()} answer of {event.score} ({event.event_id})"
    elif rule == "high_value_at_risk":
        quadrant = report.get("quadrant")
        if quadrant != "at-risk":
            return f"no longer at risk (quadrant {quadrant or 'unknown'})"
    elif (rule == "social_negative" and isinstance(event, Interaction)
          and event.channel == "social" and event.sentiment is not None
          and event.sentiment >= config.social_negative.recovered_sentiment_min):
        return f"later social post with sentiment {event.sentiment:g} ({event.event_id})"
    return None


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
        if not all(getattr(config, rule).auto_resolve for rule in rules):
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
        triggers = [trigger for trigger in (
            high_value_at_risk_trigger(quadrant_before, report_after.get("quadrant"),
                                       report_after, event.customer_id,
                                       self.config.high_value_at_risk),
            detractor_trigger(event, report_after.get("high_value"), self.config.detractor)
            if isinstance(event, Feedback) else None,
            social_negative_trigger(event, topics, self.config.social_negative)
            if isinstance(event, Interaction) else None,
        ) if trigger is not None]
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
