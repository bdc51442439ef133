"""A customer's state as plain data, for the hot path: updated in place, encoded once.

The same state as ``scoring.customer.CustomerState`` (the contract's model, kept for the
API, the alert context and as the reference of the differential test), without a pydantic
model rebuilt per event: records are tuples, timestamps integer microseconds since the
epoch (UTC; exact, unlike float seconds).

Split in two, so that what is written per event stays small whatever the customer did:
- the hot part (``plain_codec.encode``), rewritten with each batch that changes the customer: the
  profile, the latest score per survey (score, time, event id), negative-signal times,
  the remembered event ids with their offsets, applied offsets, alert cooldowns, and
  which history slots hold the recent records;
- the history, appended: one record per recent interaction or answer in a slot (slots are
  reused once the oldest record is dropped) and the full latest answer per survey.
  ``take_writes`` gives what a batch added or dropped (None: a tombstone); the records
  live in the same table as the hot part, under ``history_key``.

The hot part's encoding, both ways, is scoring.plain_codec.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    TEXT_KEPT,
    StateRules,
)
from cxstream.scoring.features import Thresholds, note_interaction
from cxstream.scoring.groups import Counted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NEGATIVE_OUTCOMES = frozenset({"failure", "abandoned", "escalated"})
#: reads a history record (by history_key) from the table; None: not there
HistoryLoader = Callable[[bytes], bytes | None]

# record layouts (tuples): what each position holds
PROFILE_FIELDS = ("segment", "value", "owner", "region", "updated_at")
SCORE_FIELDS = ("event_id", "survey", "score", "at", "channel", "touchpoint", "comment",
                "language")
INTERACTION_FIELDS = ("event_id", "at", "channel", "touchpoint", "outcome", "wait_seconds",
                      "sentiment", "text", "negative")
S_AT = SCORE_FIELDS.index("at")
I_AT = INTERACTION_FIELDS.index("at")
#: history kinds: their letter in keys, and where a record keeps its time
SCORES, INTERACTIONS = "s", "i"
AT_OF = {SCORES: S_AT, INTERACTIONS: I_AT}
KIND_LETTER = {"interaction": "i", "feedback": "f", "customer": "c"}
KIND_NAME = {letter: name for name, letter in KIND_LETTER.items()}


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (exact for any aware datetime)."""
    return (moment - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def span_us(**kwargs: float) -> int:
    """A timedelta in whole microseconds, rounded as ``timedelta`` rounds it."""
    return timedelta(**kwargs) // ONE_US


#: the first byte of every history key: never the first byte of a customer id's UTF-8,
#: so the history shares the customers' table without a clash
HISTORY_MARK = b"\xff"


def history_key(customer_id: str, tag: str) -> bytes:
    return HISTORY_MARK + f"{customer_id}|{tag}".encode()


def is_history_key(key: bytes) -> bool:
    return key[:1] == HISTORY_MARK


class PlainRules:
    """StateRules with spans in microseconds, computed once."""

    __slots__ = ("ledger", "limits", "recency_us", "rules", "signal_window_us", "thresholds")

    def __init__(self, rules: StateRules, ledger: bool = False) -> None:
        self.rules = rules
        #: keep the prediction model's ledger of recent days (scoring.features)
        self.ledger = ledger
        self.thresholds = Thresholds.of(rules)
        self.signal_window_us = span_us(hours=rules.signal_window_hours)
        self.recency_us = span_us(days=rules.score_recency_days)
        self.limits = {"nps": rules.nps_low_max, "csat": rules.csat_low_max,
                       "ces": rules.ces_low_max}


class Customer:
    """One customer's state (see CustomerState for what each part means)."""

    __slots__ = ("alerts", "applied_up_to", "cache", "counted", "customer_id", "history",
                 "last_event_at", "last_scores", "ledger", "order", "prediction", "profile",
                 "remembered", "signals", "writes")

    def __init__(self, customer_id: str, history: HistoryLoader | None = None) -> None:
        self.customer_id = customer_id
        self.profile: tuple[Any, ...] | None = None
        #: survey -> (score, time, event id) of the latest answer (in full: history "l")
        self.last_scores: dict[str, tuple[int, int, str]] = {}
        self.signals: list[int] = []  # negative interactions' times, sorted
        self.applied_up_to: dict[str, int] = {}
        self.last_event_at: int | None = None
        self.counted: dict[str, dict[str, Counted]] = {}
        self.alerts: dict[str, Any] = {}
        #: the prediction model's days (scoring.features; kept with a model configured)
        self.ledger: list[list[Any]] = []
        #: the latest prediction (scoring.prediction.Predictor.predict; None: none)
        self.prediction: list[Any] | None = None
        #: history kind -> slots of the kept records, in time order
        self.order: dict[str, list[int]] = {}
        #: "<kind letter>:<event_id>" -> offset of the message that first brought it,
        #: oldest first (CustomerState.seen, with short kinds)
        self.remembered: dict[str, int] = {}
        self.history = history
        self.cache: dict[str, Any] = {}  # history records read or written, by tag
        self.writes: dict[str, Any] = {}  # history changes not yet taken (None: deleted)

    # -- history records --------------------------------------------------------------

    def read(self, tag: str) -> Any:
        """A history record by tag (decoded; None: not there)."""
        if tag in self.cache:
            return self.cache[tag]
        raw = None if self.history is None else self.history(
            history_key(self.customer_id, tag))
        value = None if raw is None else orjson.loads(raw)
        self.cache[tag] = value
        return value

    def write(self, tag: str, value: Any) -> None:
        """Set (or with None delete) a history record, written with the next change."""
        self.cache[tag] = value
        self.writes[tag] = value  # encoded once taken: a record may change again first

    def take_writes(self) -> dict[str, bytes | None]:
        """History records changed since the last call, encoded, by tag (None: deleted)."""
        writes, self.writes = self.writes, {}
        return {tag: None if value is None else orjson.dumps(value)
                for tag, value in writes.items()}

    def history_tags(self) -> list[str]:
        """Every history record the customer has (to delete them all)."""
        tags = [f"{kind}{slot}" for kind, slots in self.order.items() for slot in slots]
        tags += [f"l{survey}" for survey in self.last_scores]
        return tags

    # -- recent records ---------------------------------------------------------------

    def records(self, kind: str) -> list[tuple[Any, ...]]:
        """The kept records of ``kind`` (SCORES, INTERACTIONS), in time order."""
        found = (self.read(f"{kind}{slot}") for slot in self.order.get(kind, ()))
        return [tuple(record) for record in found if record is not None]

    def has_records(self, kind: str) -> bool:
        return bool(self.order.get(kind))

    def add_record(self, kind: str, record: tuple[Any, ...], kept: int) -> None:
        """Insert after the records at the same time or earlier; keep the ``kept``
        latest (the record itself is dropped when it would be the oldest of a full
        history). Call before last_event_at counts the record."""
        at = record[AT_OF[kind]]
        order = self.order.setdefault(kind, [])
        if not order or (self.last_event_at is not None and at >= self.last_event_at):
            position = len(order)  # the usual case, a record newer than all: none is read
        else:
            times = [self.read(f"{kind}{slot}")[AT_OF[kind]] for slot in order]
            position = bisect_right(times, at)
        drop = max(len(order) + 1 - kept, 0)  # oldest first, once it is in
        dropped = order[:drop] if position >= drop else order[:drop - 1]
        for slot in dropped:  # dropped records are deleted, but a slot may be reused
            self.write(f"{kind}{slot}", None)
        del order[:len(dropped)]
        if position < drop:
            return  # the record itself is older than every record kept
        position -= len(dropped)
        free = dropped[-1] if dropped else _free_slot(order)
        order.insert(position, free)
        self.write(f"{kind}{free}", record)

    # -- remembered event ids ---------------------------------------------------------

    def seen_offset(self, kind: str, event_id: str) -> int | None:
        return self.remembered.get(f"{KIND_LETTER[kind]}:{event_id}")

    def delivery_of(self, kind: str, event_id: str, offset: int) -> str:
        """As CustomerState.delivery_of: "new", "replay" or "duplicate"."""
        seen_at = self.seen_offset(kind, event_id)
        if seen_at is not None:
            return "replay" if seen_at == offset else "duplicate"
        return "duplicate" if offset <= self.applied_up_to.get(kind, -1) else "new"

    def remember(self, kind: str, event_id: str, offset: int, kept: int) -> None:
        """Mark an event as applied (the ``kept`` most recent ids, oldest dropped)."""
        remembered = self.remembered
        remembered[f"{KIND_LETTER[kind]}:{event_id}"] = offset
        while len(remembered) > kept:
            del remembered[next(iter(remembered))]
        if offset > self.applied_up_to.get(kind, -1):
            self.applied_up_to[kind] = offset

    def seen(self) -> dict[str, int]:
        """"<kind>:<event_id>" -> offset, oldest first (CustomerState.seen)."""
        return {f"{KIND_NAME[name[0]]}{name[1:]}": offset
                for name, offset in self.remembered.items()}

    def last_record(self, survey: str) -> tuple[Any, ...]:
        return tuple(self.read(f"l{survey}"))


def _free_slot(order: list[int]) -> int:
    if len(order) not in order:  # the usual case: slots 0..n-1 are the ones in use
        return len(order)
    used = set(order)
    return next(slot for slot in range(len(order) + 1) if slot not in used)


def apply_profile(state: Customer, event: CustomerProfile) -> bool:
    """The latest profile by updated_at wins (an equal time: the one read later); False:
    an older profile, nothing changed."""
    updated = to_us(event.updated_at)
    if state.profile is not None and updated < state.profile[4]:
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
    state.add_record(INTERACTIONS, record, rules.rules.recent_interactions_kept)
    if state.last_event_at is None or at > state.last_event_at:
        state.last_event_at = at
    if rules.ledger:
        note_interaction(state.ledger, at, event.channel, event.touchpoint, event.outcome,
                         event.wait_seconds, event.sentiment, rules.thresholds)
    if negative:
        signals = state.signals
        insort(signals, at)
        horizon = signals[-1] - rules.signal_window_us
        state.signals = signals[bisect_left(signals, horizon):][
            -rules.rules.negative_signals_kept:]


def apply_feedback(state: Customer, event: Feedback, at: int, rules: PlainRules) -> None:
    comment = event.comment
    record = (event.event_id, event.survey, event.score, at, event.channel, event.touchpoint,
              comment[:TEXT_KEPT] if comment else None, event.language if comment else None)
    previous = state.last_scores.get(event.survey)
    if previous is None or at >= previous[1]:
        state.last_scores[event.survey] = (event.score, at, event.event_id)
        state.write(f"l{event.survey}", record)
    state.add_record(SCORES, record, rules.rules.recent_scores_kept)
    if state.last_event_at is None or at > state.last_event_at:
        state.last_event_at = at


def negative_signal_count(state: Customer, rules: PlainRules) -> int:
    return _signals_since(state.signals, state.last_event_at, rules)


def _signals_since(signals: list[int], last_event_at: int | None, rules: PlainRules) -> int:
    if last_event_at is None:
        return 0
    return len(signals) - bisect_left(signals, last_event_at - rules.signal_window_us)


def experience_is_low(state: Customer, rules: PlainRules) -> bool | None:
    """As scoring.customer.experience_is_low, without building the reasons."""
    return low_experience(state.last_scores, state.has_records(INTERACTIONS),
                           state.last_event_at, state.signals, rules)


def low_experience(last_scores: dict[str, Any], has_interactions: bool,
                    last: int | None, signals: list[int], rules: PlainRules) -> bool | None:
    if not (last_scores or has_interactions):
        return None
    for survey, (score, at, _) in last_scores.items():
        recent = last is None or last - at <= rules.recency_us
        if recent and score <= rules.limits[survey]:
            return True
    return _signals_since(signals, last, rules) >= rules.rules.at_risk_negative_signals
