"""An alert's life after it is raised: who has it, what was done, and by when.

Shape: (case, command, now) -> case with one more change in its history, or a refusal.
Every change is a record on the lifecycle topic (the ``alert_cases`` table's compacted
changelog, keyed by alert id), so the latest record of an alert is its whole case.

    raise ─▶ open ──ack──▶ acknowledged ──resolve──▶ resolved
              │  ▲            │                         ▲
        snooze│  │wake  assign/note (any open status)   │ raised again (a new trigger
              ▼  │            │                         │ folded into it): open again
            snoozed ──────────┴── escalate when a deadline passes (severity +1 step)

Deadlines: ``act_by`` (to acknowledge; from the severity's ``response_hours``) and, once
acknowledged, ``resolve_by`` (``lifecycle.resolve_hours``). A deadline that passes
escalates the alert: one step up in severity, to the escalation target of its team, with
a new deadline; at most ``lifecycle.max_escalations`` times.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Literal

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.rule_settings import Severity
from cxstream.schemas.outputs import Alert, AlertCase, CaseStatus, Change

__all__ = ["AlertCase", "Change"]  # the lifecycle topic's records (schemas.outputs)
STEP_UP: dict[str, Severity] = {"info": "warning", "warning": "critical",
                                "critical": "critical"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
#: the system's own name in a case's history (escalations, auto-resolve, wake-ups)
SYSTEM = "cxstream"
HISTORY_KEPT = 100
NOTE_MAX = 2_000
#: the encoded history of a case is kept under this many bytes, the oldest changes going
#: first: a hundred notes of the costliest characters would outgrow a changelog record
#: (alerts.bounds.case_bytes_bound)
HISTORY_BYTES = 262_144


class TransitionRefused(ValueError):
    """The alert's status does not allow this change (HTTP 409)."""


class InvalidCommand(ValueError):
    """The command itself is wrong: an unknown category, a time in the past (HTTP 400)."""


def _hours(config: RulesConfig, which: Literal["act", "resolve"], severity: str) -> float:
    table = config.response_hours if which == "act" else config.lifecycle.resolve_hours
    return float(table.get(severity, 24))  # type: ignore[call-overload]


def kept_history(history: tuple[Change, ...]) -> tuple[Change, ...]:
    """The newest HISTORY_KEPT changes that fit in HISTORY_BYTES together (the newest
    one always)."""
    history = history[-HISTORY_KEPT:]
    total, first = 0, len(history)
    while first > 0:
        total += len(history[first - 1].model_dump_json()) + 1
        if total > HISTORY_BYTES and first < len(history):
            break
        first -= 1
    return history[first:]


def _changed(case: AlertCase, change: Change, **update: Any) -> AlertCase:
    history = kept_history((*case.history, change))
    return case.model_copy(update={**update, "history": history, "updated_at": change.at})


def open_case(alert: Alert, team: str, now: datetime, config: RulesConfig) -> AlertCase:
    """The case of a newly raised alert."""
    change = Change(action="raised", actor=SYSTEM, at=now, reason=alert.summary,
                    details={"severity": alert.severity, "owner": alert.owner,
                             "occurrences": alert.occurrences})
    return AlertCase(alert=alert, severity=alert.severity, team=team, owner=alert.owner,
                     act_by=alert.act_by or now + timedelta(
                         hours=_hours(config, "act", alert.severity)),
                     updated_at=now, history=(change,))


def take_alert(case: AlertCase | None, alert: Alert, team: str, now: datetime,
               config: RulesConfig) -> AlertCase | None:
    """Fold an alert message from the pipeline into its case; None when it changes
    nothing (a message read again). A new trigger folded into a resolved alert opens it
    again: the customer needs attention once more."""
    if case is None:
        return open_case(alert, team, now, config)
    if alert.occurrences <= case.alert.occurrences:
        return None
    severity = max(case.severity, alert.severity, key=SEVERITY_RANK.__getitem__)
    details = {"occurrences": alert.occurrences, "severity": severity}
    if case.status == "resolved":
        change = Change(action="reopened", actor=SYSTEM, at=now,
                        reason=f"triggered again ({alert.occurrences} triggers)",
                        details=details)
        return _changed(case, change, alert=alert, severity=severity, status="open",
                        resolved_at=None, resolution=None, resolve_by=None,
                        acknowledged_at=None,
                        act_by=now + timedelta(hours=_hours(config, "act", severity)))
    change = Change(action="updated", actor=SYSTEM, at=now,
                    reason=f"{alert.occurrences} triggers folded in", details=details)
    return _changed(case, change, alert=alert, severity=severity)


def _require(case: AlertCase, allowed: set[str], what: str) -> None:
    if case.status not in allowed:
        raise TransitionRefused(f"cannot {what} an alert that is {case.status}")


def acknowledge(case: AlertCase, actor: str, now: datetime, config: RulesConfig
                ) -> AlertCase:
    _require(case, {"open", "snoozed"}, "acknowledge")
    change = Change(action="acknowledged", actor=actor, at=now)
    return _changed(case, change, status="acknowledged", acknowledged_at=now,
                    snoozed_until=None, snoozed_from=None,
                    resolve_by=now + timedelta(hours=_hours(config, "resolve", case.severity)))


def assign(case: AlertCase, actor: str, to: str, now: datetime) -> AlertCase:
    _require(case, {"open", "acknowledged", "snoozed"}, "assign")
    to = to.strip()
    if not to or len(to) > 128:
        raise InvalidCommand("to: name whom to assign the alert to (1-128 characters)")
    change = Change(action="assigned", actor=actor, at=now, details={"from": case.owner,
                                                                      "to": to})
    return _changed(case, change, owner=to)


def note(case: AlertCase, actor: str, text: str, now: datetime) -> AlertCase:
    text = text.strip()
    if not text:
        raise InvalidCommand("text: the note is empty")
    if len(text) > NOTE_MAX:
        raise InvalidCommand(f"text: a note has at most {NOTE_MAX} characters")
    return _changed(case, Change(action="noted", actor=actor, at=now, reason=text))


def snooze(case: AlertCase, actor: str, until: datetime, now: datetime,
           config: RulesConfig) -> AlertCase:
    _require(case, {"open", "acknowledged"}, "snooze")
    if until.tzinfo is None:
        raise InvalidCommand("until: the time needs a UTC offset")
    if until <= now:
        raise InvalidCommand("until: the time is not in the future")
    if until - now > timedelta(hours=config.lifecycle.snooze_max_hours):
        raise InvalidCommand(
            f"until: a snooze lasts at most {config.lifecycle.snooze_max_hours:g} hours")
    change = Change(action="snoozed", actor=actor, at=now,
                    details={"until": until.isoformat()})
    return _changed(case, change, status="snoozed", snoozed_until=until,
                    snoozed_from=case.status)


def resolve(case: AlertCase, actor: str, category: str, text: str | None, now: datetime,
            config: RulesConfig) -> AlertCase:
    _require(case, {"open", "acknowledged", "snoozed"}, "resolve")
    categories = config.lifecycle.resolution_categories
    if category not in categories:
        raise InvalidCommand(f"category: one of {', '.join(categories)}, "
                             f"not {category!r}")
    if text is not None and len(text) > NOTE_MAX:
        raise InvalidCommand(f"note: at most {NOTE_MAX} characters")
    change = Change(action="resolved", actor=actor, at=now, reason=text or None,
                    details={"category": category})
    return _changed(case, change, status="resolved", resolved_at=now, resolution=category,
                    snoozed_until=None, snoozed_from=None)


def auto_resolve(case: AlertCase, reason: str, now: datetime) -> AlertCase | None:
    """Resolve because the rule no longer holds; None if the case is resolved already."""
    if case.status == "resolved":
        return None
    change = Change(action="auto_resolved", actor=SYSTEM, at=now, reason=reason,
                    details={"category": "auto"})
    return _changed(case, change, status="resolved", resolved_at=now, resolution="auto",
                    snoozed_until=None, snoozed_from=None)


def escalation_target(team: str, config: RulesConfig) -> str:
    lifecycle = config.lifecycle
    return lifecycle.escalation_targets.get(team) or lifecycle.default_escalation_target or team


def tick(case: AlertCase, now: datetime, config: RulesConfig) -> AlertCase | None:
    """What time alone does to a case: a snooze ends, a deadline passes. None: nothing."""
    if case.status == "snoozed" and case.snoozed_until is not None:
        if now < case.snoozed_until:
            return None
        back: CaseStatus = case.snoozed_from or "open"
        grace = timedelta(minutes=config.lifecycle.snooze_grace_minutes)
        moved = {"act_by": max(case.act_by or now, now + grace)} if back == "open" else {
            "resolve_by": max(case.resolve_by or now, now + grace)}
        change = Change(action="woke", actor=SYSTEM, at=now, reason="the snooze ended")
        return _changed(case, change, status=back, snoozed_until=None, snoozed_from=None,
                        **moved)
    deadline = case.deadline()
    if deadline is None or now < deadline:
        return None
    if case.escalations >= config.lifecycle.max_escalations:
        return None  # escalated as far as it goes: the breach stays visible in the API
    return escalate(case, now, config)


def escalate(case: AlertCase, now: datetime, config: RulesConfig) -> AlertCase:
    missed = "acknowledged" if case.status == "open" else "resolved"
    severity = STEP_UP[case.severity]
    target = escalation_target(case.team, config)
    change = Change(action="escalated", actor=SYSTEM, at=now,
                    reason=f"not {missed} by "
                           f"{case.deadline().isoformat(timespec='seconds')}",  # type: ignore[union-attr]
                    details={"missed": missed, "severity": severity,
                               "from": case.owner, "to": target})
    update: dict[str, Any] = {"severity": severity, "owner": target, "team": target,
                              "escalations": case.escalations + 1}
    if case.status == "open":
        update["act_by"] = now + timedelta(hours=_hours(config, "act", severity))
    else:
        update["resolve_by"] = now + timedelta(hours=_hours(config, "resolve", severity))
    return _changed(case, change, **update)


def missed_deadline(change: Change) -> str | None:
    """"acknowledged" or "resolved" for an escalation: which deadline was missed."""
    if change.action != "escalated":
        return None
    return str(change.details.get("missed"))


def age_band(case: AlertCase, now: datetime) -> str:
    """How long an open alert has been open, in the bands of the metric."""
    return band_of_age((now - case.alert.created_at).total_seconds())


def band_of_age(seconds: float) -> str:
    for limit, band in ((3_600, "lt_1h"), (4 * 3_600, "1h_4h"), (24 * 3_600, "4h_24h")):
        if seconds < limit:
            return band
    return "gt_24h"


AGE_BANDS = ("lt_1h", "1h_4h", "4h_24h", "gt_24h")


def as_notice(case: AlertCase) -> Alert:
    """The alert message that tells the sinks of an escalation or a resolution (on the
    alerts topic, after the raise: consumers keep the latest message per alert id)."""
    change = case.last_change
    notice = "escalated" if change.action == "escalated" else "resolved"
    return case.alert.model_copy(update={
        "severity": case.severity, "owner": case.owner, "team": case.team,
        "status": "resolved" if case.status == "resolved" else (
            "acknowledged" if case.status == "acknowledged" else "open"),
        "notice": notice, "escalations": case.escalations, "resolution": case.resolution,
        "resolutions": sum(c.action in {"resolved", "auto_resolved"} for c in case.history),
        "act_by": case.deadline() or case.alert.act_by, "notice_reason": change.reason,
        "notice_at": change.at})


#: what a redacted case keeps of the details of its history (figures, never text)
KEPT_DETAILS = frozenset({"severity", "occurrences", "until", "category", "escalations"})


def erased_id(customer_id: str) -> str:
    """What an erased customer is called in the cases that named them."""
    return "erased-" + hashlib.sha256(customer_id.encode()).hexdigest()[:12]


def redact(case: AlertCase, actor: str, now: datetime) -> AlertCase:
    """The case without the customer's identity and free text (right to erasure): the
    customer id becomes a digest, the alert's context (comments, recent interactions,
    profile) and texts go, and every reason and note in the history is replaced; the
    rule, severity, deadlines, statuses and who acted stay, for the team's records."""
    alert = case.alert
    reason = {key: value for key, value in alert.reason.items()
              if key not in {"text", "comment", "event_id"}}
    hidden = alert.model_copy(update={
        "customer_id": erased_id(alert.customer_id or ""), "context": {}, "reason": reason,
        "summary": f"{alert.rule} alert of an erased customer", "notice_reason": None})
    history = tuple(change.model_copy(update={
        "reason": None if change.reason is None else "(redacted: the customer was erased)",
        "details": {k: v for k, v in change.details.items() if k in KEPT_DETAILS}})
        for change in case.history)
    change = Change(action="redacted", actor=actor, at=now,
                    reason="the customer was erased")
    return case.model_copy(update={"alert": hidden,
                                   "history": kept_history((*history, change)),
                                   "updated_at": now})


def due_text(seconds: int | None) -> str:
    """Time left to an alert's deadline, as the console and the command line show it:
    "2 h 5 min left", "overdue by 12 min", "3 d 1 h left", "no deadline"."""
    if seconds is None:
        return "no deadline"
    late = seconds < 0
    left = abs(int(seconds))
    days, rest = divmod(left, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = max(rest // 60, 0 if days or hours else 1)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes and not days else ""]
    text = " ".join(p for p in parts if p) or "1 min"
    return f"overdue by {text}" if late else f"{text} left"
