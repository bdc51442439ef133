"""Group rules: the same issue for many customers, and a segment's score dropping.

Recurring issues, shape: customer events -> signals keyed by touchpoint or topic
(repartitioned, so one worker counts each key) -> per key and window, the distinct
customers -> one alert when they reach min_customers.
Segment drops, shape: merged tallies of a segment (current window, baseline windows) ->
an alert when the drop is larger than the set margin and the margin of error.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cxstream.alerts.building import alert_id, build_alert
from cxstream.alerts.comment_tags import COMPLAINT
from cxstream.alerts.config import RecurringIssueRule, RulesConfig
from cxstream.schemas.events import Feedback, Interaction
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.scoring.customer import is_negative as is_negative_interaction
from cxstream.scoring.tallies import Tally, scores
from cxstream.scoring.windows import from_epoch, window_start

EXAMPLES_KEPT = 5
CUSTOMERS_KEPT = 200
#: the first characters of a comment an example signal keeps
SIGNAL_COMMENT_CHARS = 280


class Signal(BaseModel):
    """A customer's negative experience at a touchpoint or about a topic."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["touchpoint", "topic"]
    key: str
    customer_id: str
    event_id: str
    at: datetime
    segment: str | None = None
    detail: str
    comment: str | None = None

    @property
    def group(self) -> str:
        return f"{self.kind}:{self.key}"


def is_negative_feedback(event: Feedback, config: RulesConfig) -> bool:
    rule = config.detractor
    limit = {"nps": rule.nps_max, "csat": rule.csat_max, "ces": rule.ces_max}[event.survey]
    return limit is not None and event.score <= limit


def signals_of(event: Feedback | Interaction, topics: list[str], segment: str | None,
               config: RulesConfig, state_rules: StateRules) -> list[Signal]:
    """The signals one event gives: its touchpoint, and each issue topic of its text."""
    if isinstance(event, Feedback):
        if not is_negative_feedback(event, config):
            return []
        detail, text = f"{event.survey.upper()} {event.score}", event.comment
    else:
        failed = event.outcome in {"failure", "abandoned", "escalated"}
        if not (failed or is_negative_interaction(event, state_rules)):
            return []
        detail, text = (event.outcome or "negative interaction"), event.text
    common: dict[str, Any] = {"customer_id": event.customer_id, "event_id": event.event_id,
              "at": event.occurred_at, "segment": segment, "detail": detail,
              "comment": text[:SIGNAL_COMMENT_CHARS] if text else None}
    found = [Signal(kind="touchpoint", key=event.touchpoint, **common)]
    # a topic named like the touchpoint is the same issue: counted once, as the touchpoint
    found += [Signal(kind="topic", key=topic, **common) for topic in topics
              if topic not in {COMPLAINT, event.touchpoint}]
    return found


class IssueWindow(BaseModel):
    """Distinct customers with a signal for one key in one window."""

    model_config = ConfigDict(frozen=True)

    customers: tuple[str, ...] = ()
    count: int = 0
    examples: tuple[dict[str, Any], ...] = ()
    alert: dict[str, Any] | None = None
    alert_offset: int = -1
    last_offset: int = -1
    resolved: bool = False  # its alert was resolved: the next window stayed below the bar


def issue_window_start(signal: Signal, rule: RecurringIssueRule) -> int:
    return window_start(signal.at.timestamp(), rule.window_minutes * 60)


def issue_window_key(group: str, start: int) -> bytes:
    return f"{group}|{start}".encode()


def parse_issue_window_key(raw: bytes) -> tuple[str, int]:
    """(group, window start) of an issue-window key (a group may itself hold "|")."""
    group, start = raw.decode().rsplit("|", 1)
    return group, int(start)


def issue_window_expired(start: int, rule: RecurringIssueRule, now: float,
                         retention_seconds: float) -> bool:
    """A window is kept while a signal may still land in it: until ``retention_seconds``
    (the longest an event may be late and still act on) after its end. A signal for an
    expired window is ignored, so an expired window is never counted again."""
    return start + rule.window_minutes * 60 + retention_seconds < now


def fold_signal(window: IssueWindow, signal: Signal, offset: int, config: RulesConfig,
                now: datetime) -> tuple[IssueWindow, Alert | None]:
    """Count a signal; the alert, when this signal is the one that reaches the threshold.

    A signal at or below the window's last offset is a redelivery: it changes nothing,
    and the alert it raised (if it raised one) is returned again to be re-sent.
    """
    if offset <= window.last_offset:
        again = window.alert if offset == window.alert_offset else None
        return window, (Alert.model_validate(again) if again else None)
    update: dict[str, Any] = {"last_offset": offset}
    if signal.customer_id not in window.customers:
        update["count"] = window.count + 1
        update["customers"] = (*window.customers, signal.customer_id)[-CUSTOMERS_KEPT:]
        update["examples"] = (*window.examples, signal.model_dump(mode="json"))[-EXAMPLES_KEPT:]
    window = window.model_copy(update=update)
    rule = config.recurring_issue
    if window.alert is not None or window.count < rule.min_customers or not rule.enabled:
        return window, None
    alert = recurring_issue_alert(window, signal, config, now)
    return window.model_copy(update={"alert": alert.model_dump(mode="json"),
                                     "alert_offset": offset}), alert


def recurring_issue_alert(window: IssueWindow, signal: Signal, config: RulesConfig,
                          now: datetime) -> Alert:
    rule = config.recurring_issue
    start = issue_window_start(signal, rule)
    subject = "touchpoint" if signal.kind == "touchpoint" else "topic"
    return build_alert(
        rule="recurring_issue", severity=rule.severity,
        alert_key=alert_id("recurring_issue", signal.group, str(start)),
        customer_id=None, segment=None, owner=config.routing.cx_team,
        summary=f"{window.count} customers reported problems with {subject} "
                f"'{signal.key}' within {rule.window_minutes} minutes",
        reason={"kind": signal.kind, "key": signal.key, "distinct_customers": window.count,
                "min_customers": rule.min_customers, "window_minutes": rule.window_minutes,
                "window_start": from_epoch(start).isoformat()},
        context={"customers": list(window.customers), "examples": list(window.examples)},
        event_time=signal.at, created_at=now, occurrences=1, config=config)


def segment_drop_alerts(segment: str, current: Tally, baseline: Tally, window: str,
                        window_start_at: int, config: RulesConfig, conventions: Conventions,
                        now: datetime) -> list[Alert]:
    """An alert per metric whose current score is clearly below the segment's baseline
    (the margin test)."""
    if not config.segment_drop.enabled:
        return []
    alerts = []
    for metric in config.segment_drop.metrics:
        found = margin_drop(metric, current, baseline, config, conventions)
        if found is not None:
            alerts.append(drop_alert(("segment", segment), metric, current, baseline, window,
                                     window_start_at, {**found, "test": "margin"}, config,
                                     conventions, now))
    return alerts


def margin_drop(metric: Literal["nps", "csat", "ces"], current: Tally, baseline: Tally,
                config: RulesConfig, conventions: Conventions) -> dict[str, Any] | None:
    """The figures of a drop beyond the margin and the margin of error; else None."""
    rule = config.segment_drop
    return _drop(scores(current, conventions)[metric], scores(baseline, conventions)[metric],
                 rule.min_sample, rule.margins[metric])


def drop_alert(group: tuple[str, str], metric: Literal["nps", "csat", "ces"],
               current: Tally, baseline: Tally, window: str, window_start_at: int,
               test: dict[str, Any], config: RulesConfig, conventions: Conventions,
               now: datetime) -> Alert:
    """The alert of a group's drop found by ``test`` (its figures go in the reason)."""
    dimension, key = group
    rule = config.segment_drop
    now_score = scores(current, conventions)[metric]
    base_score = scores(baseline, conventions)[metric]
    assert now_score is not None and base_score is not None
    figures = {"current": now_score["score"], "baseline": base_score["score"],
               "drop": round(base_score["score"] - now_score["score"], 3),
               "margin": rule.margins[metric], "current_n": now_score["n"],
               "baseline_n": base_score["n"], **test}
    subject = key if dimension == "segment" else f"{dimension}:{key}"
    return build_alert(
        rule="segment_drop", severity=rule.severity,
        alert_key=alert_id("segment_drop", f"{subject}:{metric}",
                           f"{window}:{window_start_at}"),
        customer_id=None, segment=key if dimension == "segment" else None,
        owner=config.routing.cx_team,
        summary=f"{metric.upper()} of {dimension} {key} fell to {figures['current']:g} "
                f"from {figures['baseline']:g} ({window} window)",
        reason={"metric": metric, "dimension": dimension, "key": key, "window": window,
                "window_start": from_epoch(window_start_at).isoformat(), **figures},
        context={"current": now_score, "baseline": base_score,
                 "baseline_windows": rule.baseline_windows},
        event_time=from_epoch(window_start_at), created_at=now, occurrences=1,
        config=config)


def _drop(current: dict[str, Any] | None, baseline: dict[str, Any] | None, min_sample: int,
          margin: float) -> dict[str, Any] | None:
    if current is None or baseline is None:
        return None
    if current["n"] < min_sample or baseline["n"] < min_sample:
        return None
    drop = baseline["score"] - current["score"]
    error = math.hypot(current["margin_of_error"] or 0, baseline["margin_of_error"] or 0)
    if drop <= margin or drop <= error:
        return None
    return {"current": current["score"], "baseline": baseline["score"],
            "drop": round(drop, 3), "margin": margin, "margin_of_error": round(error, 3),
            "current_n": current["n"], "baseline_n": baseline["n"]}


def issue_recovered(start: int, following: IssueWindow | None, rule: RecurringIssueRule,
                    now: float) -> bool:
    """The alert of the window at ``start`` resolves once the whole next window has passed
    with fewer than ``min_customers`` customers (``following``: that window, if any)."""
    width = rule.window_minutes * 60
    if now < start + 2 * width:
        return False
    return following is None or following.count < rule.min_customers


def segment_recovered(metric: Literal["nps", "csat", "ces"], current: Tally, baseline: Tally,
                      config: RulesConfig,
                      conventions: Conventions) -> dict[str, Any] | None:
    """The figures, when a segment's score is back at or above its baseline minus the
    margin (with enough answers in the current window to say so); else None."""
    rule = config.segment_drop
    now_score = scores(current, conventions)[metric]
    base_score = scores(baseline, conventions)[metric]
    if now_score is None or base_score is None or now_score["n"] < rule.min_sample:
        return None
    floor = base_score["score"] - rule.margins[metric]
    if now_score["score"] < floor:
        return None
    return {"current": now_score["score"], "baseline": base_score["score"],
            "floor": round(floor, 3), "current_n": now_score["n"]}
