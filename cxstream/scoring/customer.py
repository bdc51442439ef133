"""Per-customer state: profile, recent scores and interactions, negative signals.

Folded one event at a time by pure functions ``(state, event) -> state``; every list is
capped so a customer's state stays bounded whatever they do.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.groups import CountedAnswers

Quadrant = Literal["exemplary", "growth", "at-risk", "dangling"]
TEXT_KEPT = 280


class StateRules(BaseModel):
    """Bounds of the state and what counts as a bad experience (CXSTREAM_* settings)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    recent_interactions_kept: int = Field(default=20, ge=1, le=1000)
    """interactions kept per customer."""
    recent_scores_kept: int = Field(default=20, ge=1, le=1000)
    """answers kept per customer."""
    group_answers_kept: int = Field(default=20, ge=0, le=100)
    """recent answers kept per group (segment, channel, touchpoint, stage, agent) and
    input partition, with their comments, for the group's page; 0: none."""
    seen_event_ids_kept: int = Field(default=100, ge=10, le=100_000)
    """per-customer memory of event ids for de-duplication."""
    negative_signals_kept: int = Field(default=100, ge=1, le=10_000)
    """per-customer negative interactions kept."""
    long_wait_seconds: float = Field(default=600, gt=0)
    """a wait at least this long is a negative signal."""
    negative_sentiment_max: float = Field(default=-0.3, ge=-1, le=1)
    """sentiment at or below this is a negative signal."""
    signal_window_hours: float = Field(default=72, gt=0)
    """negative signals count within this time before the customer's latest event."""
    score_recency_days: float = Field(default=90, gt=0)
    """older answers no longer decide the quadrant."""
    nps_low_max: int = Field(default=6, ge=0, le=10)
    """a customer's latest NPS answer at or below this makes their experience low."""
    csat_low_max: int = Field(default=2, ge=1, le=5)
    """a customer's latest CSAT answer at or below this makes their experience low."""
    ces_low_max: int = Field(default=3, ge=1, le=7)
    """a customer's latest CES answer at or below this makes their experience low."""
    at_risk_negative_signals: int = Field(default=3, ge=1)
    """this many negative signals in the window make the experience low."""


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)

    segment: str
    value: float
    owner: str | None = None
    region: str | None = None
    updated_at: datetime


class ScoreRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    survey: str
    score: int
    at: datetime
    channel: str
    touchpoint: str
    comment: str | None = None
    language: str | None = None


class InteractionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    at: datetime
    channel: str
    touchpoint: str
    outcome: str | None = None
    wait_seconds: float | None = None
    sentiment: float | None = None
    text: str | None = None
    negative: bool = False


class CustomerState(BaseModel):
    """Everything known about one customer; a JSON-friendly table value."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    profile: Profile | None = None
    last_scores: dict[str, ScoreRecord] = {}
    recent_scores: tuple[ScoreRecord, ...] = ()
    recent_interactions: tuple[InteractionRecord, ...] = ()
    negative_signals: tuple[datetime, ...] = ()
    #: "<kind>:<event_id>" -> offset of the message that first brought it (bounded, oldest
    #: dropped first): a resend has another offset, a replay after a crash the same one.
    seen: dict[str, int] = {}
    #: kind -> highest input offset applied: all of a customer's events of one kind are in
    #: one partition (keyed by customer), so an event at or below it was applied before,
    #: even once its id is no longer remembered (a re-read of the topics from the start)
    applied_up_to: dict[str, int] = {}
    last_event_at: datetime | None = None
    #: what counts for the customer per window (score_basis = latest_per_customer only)
    counted: CountedAnswers = {}
    #: the alert rules' own state (cooldowns: cxstream.alerts.cooldowns), kept in the
    #: customer's record so one changelog write holds both; the fold never reads it
    alerts: dict[str, Any] = {}
    #: the prediction model's latest score of the customer, with a model configured:
    #: {probability (of a low NPS answer), model_version, at, reasons: [{feature, value,
    #: text}]} (docs/predictions.md)
    prediction: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _cooldowns_of_earlier_releases(cls, data: Any) -> Any:
        """States written before 0.2.0 kept the cooldowns in ``open_alerts``."""
        if isinstance(data, dict) and "open_alerts" in data:
            data = dict(data)
            data["alerts"] = {**data.get("alerts", {}), "open": data.pop("open_alerts")}
        return data

    @field_validator("negative_signals")
    @classmethod
    def _in_time_order(cls, signals: tuple[datetime, ...]) -> tuple[datetime, ...]:
        return tuple(sorted(signals))  # negative_signal_count bisects them

    @field_validator("recent_scores", "recent_interactions")
    @classmethod
    def _records_in_time_order(cls, records: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(sorted(records, key=_at))  # _with_newest inserts into the order

    def seen_offset(self, kind: str, event_id: str) -> int | None:
        return self.seen.get(f"{kind}:{event_id}")

    def delivery_of(self, kind: str, event_id: str, offset: int) -> str:
        """"new" (apply it), "replay" (applied from this very offset: a redelivery after
        a crash) or "duplicate" (a resend, or an old event read again)."""
        seen_at = self.seen_offset(kind, event_id)
        if seen_at is not None:
            return "replay" if seen_at == offset else "duplicate"
        return "duplicate" if offset <= self.applied_up_to.get(kind, -1) else "new"


def remember(state: CustomerState, kind: str, event_id: str, offset: int,
             rules: StateRules) -> CustomerState:
    """Mark an event as applied (bounded memory of the most recent ids)."""
    seen = dict(state.seen)
    seen[f"{kind}:{event_id}"] = offset
    while len(seen) > rules.seen_event_ids_kept:
        del seen[next(iter(seen))]
    applied = state.applied_up_to
    if offset > applied.get(kind, -1):
        applied = {**applied, kind: offset}
    return state.model_copy(update={"seen": seen, "applied_up_to": applied})


def apply_profile(state: CustomerState, event: CustomerProfile) -> CustomerState:
    """The latest profile by updated_at wins (an equal time: the one read later)."""
    if state.profile is not None and event.updated_at < state.profile.updated_at:
        return state
    profile = Profile(segment=event.segment, value=event.value, owner=event.owner,
                      region=event.region, updated_at=event.updated_at)
    return state.model_copy(update={"profile": profile})


def is_negative(event: Interaction, rules: StateRules) -> bool:
    """A silent signal: failed, abandoned or escalated; a long wait; negative sentiment."""
    return (
        event.outcome in {"failure", "abandoned", "escalated"}
        or (event.wait_seconds is not None and event.wait_seconds >= rules.long_wait_seconds)
        or (event.sentiment is not None and event.sentiment <= rules.negative_sentiment_max)
    )


def apply_interaction(state: CustomerState, event: Interaction,
                      rules: StateRules) -> CustomerState:
    """Add an interaction to the recent ones (kept in event-time order) and its signal."""
    negative = is_negative(event, rules)
    record = InteractionRecord(
        event_id=event.event_id, at=event.occurred_at, channel=event.channel,
        touchpoint=event.touchpoint, outcome=event.outcome, wait_seconds=event.wait_seconds,
        sentiment=event.sentiment, text=event.text[:TEXT_KEPT] if event.text else None,
        negative=negative,
    )
    interactions = _with_newest(state.recent_interactions, record,
                                rules.recent_interactions_kept)
    update: dict[str, object] = {"recent_interactions": interactions,
                                 "last_event_at": _later(state.last_event_at, event.occurred_at)}
    if negative:
        signals = sorted((*state.negative_signals, event.occurred_at))
        horizon = max(signals) - timedelta(hours=rules.signal_window_hours)
        kept = [at for at in signals if at >= horizon][-rules.negative_signals_kept:]
        update["negative_signals"] = tuple(kept)
    return state.model_copy(update=update)


def apply_feedback(state: CustomerState, event: Feedback, rules: StateRules) -> CustomerState:
    """Record an answer: the latest per survey (by event time) and the recent ones."""
    record = ScoreRecord(event_id=event.event_id, survey=event.survey, score=event.score,
                         at=event.occurred_at, channel=event.channel,
                         touchpoint=event.touchpoint,
                         comment=event.comment[:TEXT_KEPT] if event.comment else None,
                         language=event.language if event.comment else None)
    last = dict(state.last_scores)
    previous = last.get(event.survey)
    if previous is None or event.occurred_at >= previous.at:
        last[event.survey] = record
    return state.model_copy(update={
        "last_scores": last,
        "recent_scores": _with_newest(state.recent_scores, record, rules.recent_scores_kept),
        "last_event_at": _later(state.last_event_at, event.occurred_at),
    })


def negative_signal_count(state: CustomerState, rules: StateRules) -> int:
    """Negative interactions within the signal window before the customer's latest event."""
    if state.last_event_at is None:
        return 0
    horizon = state.last_event_at - timedelta(hours=rules.signal_window_hours)
    # negative_signals is kept sorted (apply_interaction)
    return len(state.negative_signals) - bisect_left(state.negative_signals, horizon)


def low_score_reasons(state: CustomerState, rules: StateRules,
                      signals: int | None = None) -> list[str]:
    """Why the customer's recent experience is low (empty: not low); ``signals``: the
    negative_signal_count if the caller has it already."""
    reasons = []
    limits = {"nps": rules.nps_low_max, "csat": rules.csat_low_max, "ces": rules.ces_low_max}
    for survey, record in sorted(state.last_scores.items()):
        recent = state.last_event_at is None or (
            state.last_event_at - record.at <= timedelta(days=rules.score_recency_days))
        if recent and record.score <= limits[survey]:
            reasons.append(f"latest {survey.upper()} {record.score} ≤ {limits[survey]}")
    if signals is None:
        signals = negative_signal_count(state, rules)
    if signals >= rules.at_risk_negative_signals:
        reasons.append(f"{signals} negative interactions in {rules.signal_window_hours:g} h")
    return reasons


def quadrant(state: CustomerState, high_value: bool | None,
             rules: StateRules) -> Quadrant | None:
    """Score against revenue; None until the customer's value and experience are known."""
    return quadrant_of(high_value, experience_is_low(state, rules))


def quadrant_of(high_value: bool | None, low: bool | None) -> Quadrant | None:
    """The quadrant from its two axes (None while either is unknown)."""
    if high_value is None or low is None:
        return None
    if high_value:
        return "at-risk" if low else "exemplary"
    return "dangling" if low else "growth"


def experience_is_low(state: CustomerState, rules: StateRules,
                      reasons: list[str] | None = None) -> bool | None:
    """Whether the recent experience is low; None before any score or interaction
    (``reasons``: the low_score_reasons if the caller has them already)."""
    if not (state.last_scores or state.recent_interactions):
        return None
    return bool(low_score_reasons(state, rules) if reasons is None else reasons)


def _with_newest(records: tuple, record: Any, kept: int) -> tuple:  # type: ignore[type-arg]
    """``records`` (in time order) with ``record`` inserted after those at the same time or
    earlier, keeping the ``kept`` latest."""
    merged = list(records)
    insort(merged, record, key=_at)
    return tuple(merged[-kept:])


def _at(record: Any) -> datetime:
    return record.at  # type: ignore[no-any-return]


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current
