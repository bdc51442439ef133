"""A customer's state as plain data, for the hot path: updated in place, encoded once.

The same state as ``scoring.customer.CustomerState`` (the contract's model, kept for the
API, the alert context and as the reference of the differential test), without a pydantic
model rebuilt per event: records are tuples, lists are updated in place, timestamps are
integer microseconds since the epoch (UTC; exact, unlike float seconds).

Encoding (``encode``), fixed so two encodings of one state compare byte for byte: a JSON
object written by orjson, keys in the order of ``_FIELDS`` (empty and null ones left
out), records as arrays in the order of their ``*_FIELDS``, floats in orjson's shortest
round-trip form, after the prefix ``b"<partition>|"``. Its ``"v"`` is FORMAT. Records of
earlier releases (a ``CustomerState`` as JSON, no ``"v"``) are still read (``decode``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    TEXT_KEPT,
    CustomerState,
    InteractionRecord,
    Profile,
    ScoreRecord,
    StateRules,
)
from cxstream.scoring.groups import Counted

FORMAT = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NEGATIVE_OUTCOMES = frozenset({"failure", "abandoned", "escalated"})

# record layouts (tuples): what each position holds
PROFILE_FIELDS = ("segment", "value", "owner", "region", "updated_at")
SCORE_FIELDS = ("event_id", "survey", "score", "at", "channel", "touchpoint", "comment",
                "language")
INTERACTION_FIELDS = ("event_id", "at", "channel", "touchpoint", "outcome", "wait_seconds",
                      "sentiment", "text", "negative")
S_ID, S_SURVEY, S_SCORE, S_AT, S_CHANNEL, S_TOUCHPOINT, S_COMMENT, S_LANGUAGE = range(8)
I_ID, I_AT, I_CHANNEL, I_TOUCHPOINT, I_OUTCOME, I_WAIT, I_SENTIMENT, I_TEXT, I_NEG = range(9)
P_SEGMENT, P_VALUE, P_OWNER, P_REGION, P_UPDATED = range(5)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (exact for any aware datetime)."""
    return (moment - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def span_us(**kwargs: float) -> int:
    """A timedelta in whole microseconds, rounded as ``timedelta`` rounds it."""
    return timedelta(**kwargs) // ONE_US


class PlainRules:
    """StateRules with spans in microseconds, computed once."""

    __slots__ = ("limits", "recency_us", "rules", "signal_window_us")

    def __init__(self, rules: StateRules) -> None:
        self.rules = rules
        self.signal_window_us = span_us(hours=rules.signal_window_hours)
        self.recency_us = span_us(days=rules.score_recency_days)
        self.limits = {"nps": rules.nps_low_max, "csat": rules.csat_low_max,
                       "ces": rules.ces_low_max}


class Customer:
    """One customer's state (see CustomerState for what each part means)."""

    __slots__ = (
        "alerts",
        "applied_up_to",
        "counted",
        "customer_id",
        "interactions",
        "last_event_at",
        "last_scores",
        "profile",
        "scores",
        "seen",
        "signals",
    )

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.profile: tuple[Any, ...] | None = None
        self.last_scores: dict[str, tuple[Any, ...]] = {}
        self.scores: list[tuple[Any, ...]] = []  # in event-time order
        self.interactions: list[tuple[Any, ...]] = []  # in event-time order
        self.signals: list[int] = []  # negative interactions' times, sorted
        self.seen: dict[str, int] = {}  # "<kind>:<event_id>" -> offset, oldest first
        self.applied_up_to: dict[str, int] = {}
        self.last_event_at: int | None = None
        self.counted: dict[str, dict[str, Counted]] = {}
        self.alerts: dict[str, Any] = {}

    def delivery_of(self, kind: str, event_id: str, offset: int) -> str:
        """As CustomerState.delivery_of: "new", "replay" or "duplicate"."""
        seen_at = self.seen.get(f"{kind}:{event_id}")
        if seen_at is not None:
            return "replay" if seen_at == offset else "duplicate"
        return "duplicate" if offset <= self.applied_up_to.get(kind, -1) else "new"


def remember(state: Customer, kind: str, event_id: str, offset: int, kept: int) -> None:
    seen = state.seen
    seen[f"{kind}:{event_id}"] = offset
    while len(seen) > kept:
        del seen[next(iter(seen))]
    if offset > state.applied_up_to.get(kind, -1):
        state.applied_up_to[kind] = offset


def apply_profile(state: Customer, event: CustomerProfile) -> bool:
    """The latest profile by updated_at wins (an equal time: the one read later); False:
    an older profile, nothing changed."""
    updated = to_us(event.updated_at)
    if state.profile is not None and updated < state.profile[P_UPDATED]:
        return False
    state.profile = (event.segment, event.value, event.owner, event.region, updated)
    return True


def is_negative(event: Interaction, rules: StateRules) -> bool:
    return (
        event.outcome in NEGATIVE_OUTCOMES
        or (event.wait_seconds is not None and event.wait_seconds >= rules.long_wait_seconds)
        or (event.sentiment is not None and event.sentiment <= rules.negative_sentiment_max)
    )


def apply_interaction(state: Customer, event: Interaction, at: int, rules: PlainRules) -> None:
    negative = is_negative(event, rules.rules)
    text = event.text
    record = (event.event_id, at, event.channel, event.touchpoint, event.outcome,
              event.wait_seconds, event.sentiment, text[:TEXT_KEPT] if text else None,
              negative)
    _add_newest(state.interactions, record, I_AT, rules.rules.recent_interactions_kept)
    if state.last_event_at is None or at > state.last_event_at:
        state.last_event_at = at
    if negative:
        signals = state.signals
        insort(signals, at)
        horizon = signals[-1] - rules.signal_window_us
        kept = signals[bisect_left(signals, horizon):][-rules.rules.negative_signals_kept:]
        state.signals = kept


def apply_feedback(state: Customer, event: Feedback, at: int, rules: PlainRules) -> None:
    comment = event.comment
    record = (event.event_id, event.survey, event.score, at, event.channel, event.touchpoint,
              comment[:TEXT_KEPT] if comment else None, event.language if comment else None)
    previous = state.last_scores.get(event.survey)
    if previous is None or at >= previous[S_AT]:
        state.last_scores[event.survey] = record
    _add_newest(state.scores, record, S_AT, rules.rules.recent_scores_kept)
    if state.last_event_at is None or at > state.last_event_at:
        state.last_event_at = at


def _add_newest(records: list[tuple[Any, ...]], record: tuple[Any, ...], at: int,
                kept: int) -> None:
    """Insert after the records at the same time or earlier; keep the ``kept`` latest."""
    insort(records, record, key=lambda r: r[at])
    if len(records) > kept:
        del records[: len(records) - kept]


def negative_signal_count(state: Customer, rules: PlainRules) -> int:
    if state.last_event_at is None:
        return 0
    horizon = state.last_event_at - rules.signal_window_us
    return len(state.signals) - bisect_left(state.signals, horizon)


def experience_is_low(state: Customer, rules: PlainRules) -> bool | None:
    """As scoring.customer.experience_is_low, without building the reasons."""
    if not (state.last_scores or state.interactions):
        return None
    last = state.last_event_at
    for survey, record in state.last_scores.items():
        recent = last is None or last - record[S_AT] <= rules.recency_us
        if recent and record[S_SCORE] <= rules.limits[survey]:
            return True
    return negative_signal_count(state, rules) >= rules.rules.at_risk_negative_signals


# -- the contract's model, both ways (the API, the alert context, the reference) --------

def to_model(state: Customer) -> CustomerState:
    """The state as the contract's model."""
    profile = state.profile
    return CustomerState.model_construct(
        customer_id=state.customer_id,
        profile=None if profile is None else Profile.model_construct(
            segment=profile[0], value=profile[1], owner=profile[2], region=profile[3],
            updated_at=from_us(profile[4])),
        last_scores={survey: _score_model(r) for survey, r in state.last_scores.items()},
        recent_scores=tuple(_score_model(r) for r in state.scores),
        recent_interactions=tuple(_interaction_model(r) for r in state.interactions),
        negative_signals=tuple(from_us(at) for at in state.signals),
        seen=dict(state.seen), applied_up_to=dict(state.applied_up_to),
        last_event_at=None if state.last_event_at is None else from_us(state.last_event_at),
        counted={name: dict(per) for name, per in state.counted.items()},
        alerts=dict(state.alerts))


def from_model(model: CustomerState) -> Customer:
    state = Customer(model.customer_id)
    if model.profile is not None:
        p = model.profile
        state.profile = (p.segment, p.value, p.owner, p.region, to_us(p.updated_at))
    state.last_scores = {survey: _score_record(r) for survey, r in model.last_scores.items()}
    state.scores = [_score_record(r) for r in model.recent_scores]
    state.interactions = [_interaction_record(r) for r in model.recent_interactions]
    state.signals = [to_us(at) for at in model.negative_signals]
    state.seen = dict(model.seen)
    state.applied_up_to = dict(model.applied_up_to)
    state.last_event_at = None if model.last_event_at is None else to_us(model.last_event_at)
    state.counted = {name: dict(per) for name, per in model.counted.items()}
    state.alerts = dict(model.alerts)
    return state


def _score_model(r: tuple[Any, ...]) -> ScoreRecord:
    return ScoreRecord.model_construct(
        event_id=r[0], survey=r[1], score=r[2], at=from_us(r[3]), channel=r[4],
        touchpoint=r[5], comment=r[6], language=r[7])


def _interaction_model(r: tuple[Any, ...]) -> InteractionRecord:
    return InteractionRecord.model_construct(
        event_id=r[0], at=from_us(r[1]), channel=r[2], touchpoint=r[3], outcome=r[4],
        wait_seconds=r[5], sentiment=r[6], text=r[7], negative=r[8])


def _score_record(r: ScoreRecord) -> tuple[Any, ...]:
    return (r.event_id, r.survey, r.score, to_us(r.at), r.channel, r.touchpoint, r.comment,
            r.language)


def _interaction_record(r: InteractionRecord) -> tuple[Any, ...]:
    return (r.event_id, to_us(r.at), r.channel, r.touchpoint, r.outcome, r.wait_seconds,
            r.sentiment, r.text, r.negative)


# -- bytes ------------------------------------------------------------------------------

def encode(partition: int, state: Customer) -> bytes:
    """The table value: b"<partition>|" + the fixed JSON encoding (module docstring)."""
    body: dict[str, Any] = {"v": FORMAT, "customer_id": state.customer_id}
    if state.profile is not None:
        body["profile"] = state.profile
    if state.last_scores:
        body["last_scores"] = state.last_scores
    if state.scores:
        body["recent_scores"] = state.scores
    if state.interactions:
        body["recent_interactions"] = state.interactions
    if state.signals:
        body["negative_signals"] = state.signals
    if state.seen:
        body["seen"] = state.seen
    if state.applied_up_to:
        body["applied_up_to"] = state.applied_up_to
    if state.last_event_at is not None:
        body["last_event_at"] = state.last_event_at
    if state.counted:
        body["counted"] = {name: {survey: [c.start, c.score, to_us(c.at), c.groups]
                                  for survey, c in per.items()}
                           for name, per in state.counted.items()}
    if state.alerts:
        body["alerts"] = state.alerts
    return b"%d|" % partition + orjson.dumps(body)


def decode(raw: bytes) -> Customer:
    """A table value (this format, or a CustomerState of an earlier release)."""
    body = orjson.loads(raw[raw.index(b"|") + 1:])
    if body.get("v") != FORMAT:
        return from_model(CustomerState.model_validate(body))
    state = Customer(body["customer_id"])
    profile = body.get("profile")
    if profile is not None:
        state.profile = tuple(profile)
    state.last_scores = {s: tuple(r) for s, r in body.get("last_scores", {}).items()}
    state.scores = [tuple(r) for r in body.get("recent_scores", ())]
    state.interactions = [tuple(r) for r in body.get("recent_interactions", ())]
    state.signals = body.get("negative_signals", [])
    state.seen = body.get("seen", {})
    state.applied_up_to = body.get("applied_up_to", {})
    state.last_event_at = body.get("last_event_at")
    state.counted = {name: {survey: Counted.model_construct(
        start=c[0], score=c[1], at=from_us(c[2]), groups=tuple(tuple(g) for g in c[3]))
        for survey, c in per.items()} for name, per in body.get("counted", {}).items()}
    state.alerts = body.get("alerts", {})
    return state
