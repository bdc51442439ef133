"""Customer rules: high-value customer at risk, detractor, negative social post, a long
wait, and any rule added to ``CUSTOMER_RULES``: when each fires (a ``Trigger``), and when
an open alert of it no longer holds. alerts.customer_alerts runs them after each event.

Adding a rule (docs/alerts.md, "Adding a customer rule") touches this module only: its
settings (a ``RuleSettings`` model: the rule's section of the rules file), the function
that says when it fires, and its ``CustomerRule`` entry. The rules file's loader
validates the new section with the model, the worker, the backtest and the API pick the
rule up from here, and nothing in cxstream.streams changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import Field

from cxstream.alerts.comment_tags import COMPLAINT
from cxstream.alerts.rule_settings import (
    DetractorRule,
    HighValueAtRiskRule,
    RuleSettings,
    SocialNegativeRule,
)
from cxstream.schemas.events import Feedback, Interaction
from cxstream.scoring.customer import CustomerState


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


def detractor_recovered(event: Feedback | Interaction | None, report: dict[str, Any],
                        rule: DetractorRule) -> str | None:
    if not isinstance(event, Feedback):
        return None
    floor = {"nps": rule.recovered_nps_min, "csat": rule.recovered_csat_min,
             "ces": rule.recovered_ces_min}[event.survey]
    if event.score >= floor:
        return f"later {event.survey.upper()} answer of {event.score} ({event.event_id})"
    return None


def high_value_recovered(event: Feedback | Interaction | None, report: dict[str, Any],
                         rule: HighValueAtRiskRule) -> str | None:
    quadrant = report.get("quadrant")
    if quadrant != "at-risk":
        return f"no longer at risk (quadrant {quadrant or 'unknown'})"
    return None


def social_recovered(event: Feedback | Interaction | None, report: dict[str, Any],
                     rule: SocialNegativeRule) -> str | None:
    if (isinstance(event, Interaction) and event.channel == "social"
            and event.sentiment is not None
            and event.sentiment >= rule.recovered_sentiment_min):
        return f"later social post with sentiment {event.sentiment:g} ({event.event_id})"
    return None


@dataclass(frozen=True)
class RuleFacts:
    """What a customer rule reads: the event, and the customer around it."""

    event: Feedback | Interaction
    #: the customer's quadrant before the event (high-value/low-value x at-risk/...)
    quadrant_before: str | None
    #: the customer's report after it (scoring.customer_view.customer_report: quadrant,
    #: high_value, value, recent scores and interactions, negative signals)
    report: dict[str, Any]
    #: the topics of the event's comment or text (alerts.comment_tags)
    topics: list[str]
    #: the customer's state after the event (None: not given)
    customer: CustomerState | None = None


class LongWaitRule(RuleSettings):
    """A customer kept waiting on a live channel (phone, chat) longer than they should."""

    enabled: bool = False  # a rule added later is off until its section turns it on
    wait_minutes_min: float = Field(default=20, gt=0, le=24 * 60)
    channels: list[str] = Field(default=["phone", "chat"], min_length=1)
    cooldown_hours: float = Field(default=24, ge=0)


def long_wait_may_fire(event: Feedback | Interaction, rule: LongWaitRule) -> bool:
    return (rule.enabled and isinstance(event, Interaction) and event.wait_seconds is not None
            and event.channel in rule.channels
            and event.wait_seconds >= rule.wait_minutes_min * 60)


def long_wait_trigger(facts: RuleFacts, rule: LongWaitRule) -> Trigger | None:
    """A wait of ``wait_minutes_min`` or more on one of ``channels``."""
    event = facts.event
    if not (isinstance(event, Interaction) and long_wait_may_fire(event, rule)):
        return None
    minutes = (event.wait_seconds or 0) / 60
    return Trigger(
        rule="long_wait", severity=rule.severity, cooldown_hours=rule.cooldown_hours,
        summary=f"{event.customer_id} waited {minutes:.0f} min on {event.channel} "
                f"about {event.touchpoint}",
        reason={"wait_minutes": round(minutes, 1), "threshold": rule.wait_minutes_min,
                "channel": event.channel, "touchpoint": event.touchpoint,
                "event_id": event.event_id},
    )


def long_wait_recovered(event: Feedback | Interaction | None, report: dict[str, Any],
                        rule: LongWaitRule) -> str | None:
    """A later wait under the threshold on one of the rule's channels."""
    if (isinstance(event, Interaction) and event.channel in rule.channels
            and event.wait_seconds is not None
            and event.wait_seconds < rule.wait_minutes_min * 60):
        return (f"later {event.channel} wait of {event.wait_seconds / 60:.0f} min "
                f"({event.event_id})")
    return None


class PredictedAtRiskRule(RuleSettings):
    """A customer who has not answered lately, whom the prediction model expects to answer
    low (docs/predictions.md): needs CXSTREAM_MODEL_FILE; off until turned on."""

    enabled: bool = False
    #: the prediction at or above which the rule fires
    probability_min: float = Field(default=0.5, gt=0, lt=1)
    #: no answer to any survey for this long makes the customer silent
    no_answer_days: float = Field(default=30, gt=0, le=3660)
    #: only customers in the top value band
    high_value_only: bool = True
    cooldown_hours: float = Field(default=168, ge=0)


def predicted_may_fire(event: Feedback | Interaction, rule: PredictedAtRiskRule) -> bool:
    return rule.enabled and isinstance(event, Interaction)


def predicted_at_risk_trigger(facts: RuleFacts, rule: PredictedAtRiskRule) -> Trigger | None:
    """After an interaction: a silent customer (of the top band) predicted at or above
    ``probability_min``."""
    event, customer = facts.event, facts.customer
    if not (predicted_may_fire(event, rule) and customer is not None
            and customer.prediction):
        return None
    probability = float(customer.prediction["probability"])
    if probability < rule.probability_min:
        return None
    high_value = facts.report.get("high_value")
    if rule.high_value_only and high_value is not True:
        return None
    since = event.occurred_at - timedelta(days=rule.no_answer_days)
    if any(record.at >= since for record in customer.last_scores.values()):
        return None  # they answer: the detractor rule hears them
    reasons = [reason["text"] for reason in customer.prediction.get("reasons", [])]
    return Trigger(
        rule="predicted_at_risk", severity=rule.severity, cooldown_hours=rule.cooldown_hours,
        summary=f"{event.customer_id} is predicted to answer low ({probability:.2f})"
                + (f": {'; '.join(reasons)}" if reasons else ""),
        reason={"probability": probability, "threshold": rule.probability_min,
                "model_version": customer.prediction.get("model_version"),
                "no_answer_days": rule.no_answer_days, "high_value": high_value,
                "event_id": event.event_id},
    )


def predicted_recovered(event: Feedback | Interaction | None, report: dict[str, Any],
                        rule: PredictedAtRiskRule) -> str | None:
    """The customer answers: what they say is known, not predicted."""
    if isinstance(event, Feedback):
        return f"the customer answered {event.survey.upper()} {event.score} ({event.event_id})"
    return None


def _no_recovery(event: Feedback | Interaction | None, report: dict[str, Any],
                 rule: Any) -> str | None:
    return None


def _any_event(event: Feedback | Interaction, rule: Any) -> bool:
    return True


@dataclass(frozen=True)
class CustomerRule:
    """A customer rule: its section of the rules file (``settings``, a ``RuleSettings``
    model), when it fires, when an open alert of it no longer holds (None: never by
    itself), and a cheap test of whether it may fire on an event at all (the core calls
    the rules only for events some rule may fire on)."""

    name: str
    settings: type[RuleSettings]
    fires: Callable[[RuleFacts, Any], Trigger | None]
    recovered: Callable[[Feedback | Interaction | None, dict[str, Any], Any],
                        str | None] = _no_recovery
    may_fire: Callable[[Feedback | Interaction, Any], bool] = _any_event


#: Every customer rule, in the order their triggers lead an alert they fire together.
CUSTOMER_RULES: tuple[CustomerRule, ...] = (
    CustomerRule("high_value_at_risk", HighValueAtRiskRule,
                 lambda facts, rule: high_value_at_risk_trigger(
                     facts.quadrant_before, facts.report.get("quadrant"), facts.report,
                     facts.event.customer_id, rule),
                 high_value_recovered),
    CustomerRule("detractor", DetractorRule,
                 lambda facts, rule: detractor_trigger(
                     facts.event, facts.report.get("high_value"), rule)
                 if isinstance(facts.event, Feedback) else None,
                 detractor_recovered),
    CustomerRule("social_negative", SocialNegativeRule,
                 lambda facts, rule: social_negative_trigger(facts.event, facts.topics, rule)
                 if isinstance(facts.event, Interaction) else None,
                 social_recovered),
    CustomerRule("long_wait", LongWaitRule, long_wait_trigger, long_wait_recovered,
                 long_wait_may_fire),
    CustomerRule("predicted_at_risk", PredictedAtRiskRule, predicted_at_risk_trigger,
                 predicted_recovered, predicted_may_fire),
)


RULE_BY_NAME = {rule.name: rule for rule in CUSTOMER_RULES}


#: the rules added here beyond the three the core tests for itself (customer_core)
ADDED_RULES = tuple(rule for rule in CUSTOMER_RULES
                    if rule.name not in {"high_value_at_risk", "detractor", "social_negative"})
