"""Build alerts: deterministic ids, routing, and the context a receiver needs to act."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.rule_settings import Severity
from cxstream.schemas.outputs import Alert
from cxstream.scoring.customer import CustomerState


def alert_id(rule: str, subject: str, cause: str) -> str:
    """The same rule, subject (customer or group) and cause always give the same id."""
    digest = hashlib.sha256(f"{rule}\x1f{subject}\x1f{cause}".encode()).hexdigest()
    return f"{rule}-{digest[:24]}"


def route(state: CustomerState | None, routing: Any) -> str:
    """The customer's owner; else the segment's team; else the default team."""
    if state is not None and state.profile is not None:
        if state.profile.owner:
            return state.profile.owner
        team = routing.segment_teams.get(state.profile.segment)
        if team:
            return str(team)
    return str(routing.default_team)


def team_of(state: CustomerState | None, routing: Any) -> str:
    """The team a customer's alerts go to: their segment's team, else the default team
    (a named owner is a person of that team)."""
    if state is not None and state.profile is not None:
        team = routing.segment_teams.get(state.profile.segment)
        if team:
            return str(team)
    return str(routing.default_team)


def act_by(created_at: datetime, severity: Severity, config: RulesConfig) -> datetime:
    return created_at + timedelta(hours=config.response_hours.get(severity, 24))


def customer_context(state: CustomerState, report: dict[str, Any], config: RulesConfig,
                     comment: str | None = None, topics: list[str] | None = None,
                     language: str | None = None) -> dict[str, Any]:
    """Who the customer is and what happened lately, for the receiver of an alert."""
    keep = config.context_interactions
    profile = state.profile
    return {
        "customer_value": profile.value if profile else None,
        "segment": profile.segment if profile else None,
        "region": profile.region if profile else None,
        "owner": profile.owner if profile else None,
        "high_value": report.get("high_value"),
        "quadrant": report.get("quadrant"),
        "low_experience_reasons": report.get("low_experience_reasons", []),
        "negative_signals_in_window": report.get("negative_signals_in_window", 0),
        "last_scores": {survey: record.model_dump(mode="json")
                        for survey, record in state.last_scores.items()},
        "recent_scores": [r.model_dump(mode="json") for r in state.recent_scores[-keep:]]
        if keep else [],
        "recent_interactions": [r.model_dump(mode="json")
                                for r in state.recent_interactions[-keep:]] if keep else [],
        "comment": comment,
        "comment_language": language,
        "topics": topics or [],
        "prediction": state.prediction,
    }


def build_alert(*, rule: str, severity: Severity, alert_key: str, customer_id: str | None,
                segment: str | None, owner: str, summary: str, reason: dict[str, Any],
                context: dict[str, Any], event_time: datetime, created_at: datetime,
                occurrences: int, config: RulesConfig,
                team: str | None = None) -> Alert:
    return Alert(team=team or owner, alert_id=alert_key, rule=rule, severity=severity,
                 customer_id=customer_id,
                 segment=segment, owner=owner, summary=summary, reason=reason,
                 context=context, occurrences=occurrences, event_time=event_time,
                 created_at=created_at, act_by=act_by(created_at, severity, config))
