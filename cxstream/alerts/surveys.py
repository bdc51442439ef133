"""Transactional survey triggers and the fatigue rules that know the customer.

The rules file's ``surveys`` section maps interactions to a survey to send (``triggers``)
and says when a customer must not be asked (``fatigue``). Everything here is plain data
and pure functions; streams.customers.survey_desk runs them in the worker, on the events the fold
has
just applied, and keeps each customer's ``SurveyMemory`` in a table of its own.

Times are integer microseconds since the epoch. A decision is taken at a time: the
interaction's event time when it arrives, the clock's time when a deferred request is
looked at again. Every request sent is remembered at the time it was decided, and a
request is only sent if no remembered one is nearer than the window, on either side:
whatever the order in which events arrive, and however often they are repeated, no two
requests sent to a customer are ever nearer than the window (the property the tests
check). Requests are forgotten only once no decision can come near them again: older
than the longest window plus the longest time a request may wait.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cxstream.alerts.survey_config import (  # the rules file's section, and its limits
    DAY_US,
    DECISIONS_KEPT,
    HOUR_US,
    KEPT,
    MINUTE_US,
    SENT_KEPT,
    TRIGGER_NAME_CHARS,
    Reason,
    Surveys,
)
from cxstream.scoring.bounds import ID_CHARS, INT_BYTES, LANGUAGE_CHARS, PREFIX_BYTES, text_bytes


@dataclass(frozen=True, slots=True)
class Candidate:
    """A request a trigger asks for."""

    trigger: str
    survey: str
    customer_id: str
    cause: str  # the interaction's event id
    cause_at: int  # its event time
    touchpoint: str
    channel: str
    valid_until: int
    handled_by: str | None = None  # the interaction's agent

    @property
    def request_id(self) -> str:
        # computed when needed: most candidates of a periodic trigger are not due
        return request_id(self.customer_id, self.trigger, self.cause)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["send", "suppress", "later"]
    reason: Reason | None = None
    #: when a deferred request may be sent (None: look again at every check)
    due: int | None = None


@dataclass
class SurveyMemory:
    """What the fatigue rules need to know of one customer (a table value)."""

    #: (time, survey, trigger) of the requests sent, oldest first
    sent: list[tuple[int, str, str]] = field(default_factory=list)
    #: (time, survey) of the answers given
    answers: list[tuple[int, str]] = field(default_factory=list)
    #: times of failed or abandoned interactions
    failures: list[int] = field(default_factory=list)
    #: (time, language) of the latest answer with a language
    language: tuple[int, str] | None = None
    #: deferred requests: (candidate, decision that deferred it)
    pending: list[tuple[Candidate, Decision]] = field(default_factory=list)
    #: the latest decisions, for the API: request id, survey, action, reason, time
    decisions: list[tuple[str, str, str, str | None, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"s": self.sent, "a": self.answers, "f": self.failures, "l": self.language,
                "p": [[_candidate_json(c), [d.action, d.reason, d.due]]
                      for c, d in self.pending],
                "d": self.decisions}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SurveyMemory:
        return cls(sent=[(int(t), s, g) for t, s, g in body.get("s", [])],
                   answers=[(int(t), s) for t, s in body.get("a", [])],
                   failures=[int(t) for t in body.get("f", [])],
                   language=None if body.get("l") is None else (int(body["l"][0]),
                                                                 str(body["l"][1])),
                   pending=[(Candidate(*c), Decision(d[0], d[1], d[2]))
                            for c, d in body.get("p", [])],
                   decisions=[(r, s, a, why, int(t)) for r, s, a, why, t in body.get("d", [])])


EXPIRED = Decision("suppress", "expired")
OPTED_OUT = Decision("suppress", "segment_opted_out")
INTERVAL = Decision("suppress", "trigger_interval")
SEND = Decision("send")


def _candidate_json(candidate: Candidate) -> list[Any]:
    return [candidate.trigger, candidate.survey, candidate.customer_id, candidate.cause,
            candidate.cause_at, candidate.touchpoint, candidate.channel, candidate.valid_until,
            candidate.handled_by]


def request_id(customer_id: str, trigger: str, cause: str) -> str:
    """The same for the same customer, trigger and interaction: a re-read, a replay after
    a crash or a repeat of the interaction asks for the same request (the survey tool
    sends one per id)."""
    digest = hashlib.sha256(f"{customer_id}\x1f{trigger}\x1f{cause}".encode()).hexdigest()
    return f"survey-{digest[:24]}"


def candidates(config: Surveys, customer_id: str, event_id: str, at: int, touchpoint: str,
               channel: str, outcome: str | None, handled_by: str | None = None
               ) -> list[Candidate]:
    """The requests an applied interaction asks for (one per matching trigger)."""
    if not config.enabled:
        return []
    return [Candidate(name, survey, customer_id, event_id, at, touchpoint, channel,
                      at + valid, handled_by)
            for name, survey, touchpoints, channels, outcomes, _, valid
            in _plain(config).triggers
            if ((touchpoints is None or touchpoint in touchpoints)
                and (channels is None or channel in channels)
                and (outcomes is None or outcome in outcomes))]


class _Plain:
    """The rules as plain data, built once per Surveys: the decisions run for every
    interaction when a trigger matches any (a periodic NPS), and reading the pydantic
    models each time stood out in the in-process bench."""

    def __init__(self, config: Surveys) -> None:
        self.config = config  # kept alive: the cache is by id
        self.triggers = tuple(
            (t.name, t.survey, frozenset(t.touchpoints) or None, frozenset(t.channels) or None,
             frozenset(t.outcomes) or None,
             None if t.every_days is None else int(t.every_days * DAY_US),
             int(t.valid_hours * HOUR_US)) for t in config.triggers)
        self.intervals = {t[0]: t[5] for t in self.triggers}
        self.windows: dict[tuple[str | None, str], tuple[int, int] | None] = {}
        self.open_alert_later = config.fatigue.open_alert == "later"
        self.failure_wait = int(config.fatigue.after_failure.minutes * MINUTE_US)
        self.failure_later = config.fatigue.after_failure.action == "later"

    def windows_of(self, segment: str | None, survey: str) -> tuple[int, int] | None:
        key = (segment, survey)
        if key not in self.windows:
            self.windows[key] = _windows(self.config, segment, survey)
        return self.windows[key]


_PLAIN: dict[int, _Plain] = {}


def _plain(config: Surveys) -> _Plain:
    plain = _PLAIN.get(id(config))
    if plain is None or plain.config is not config:
        plain = _PLAIN[id(config)] = _Plain(config)
    return plain


def _windows(config: Surveys, segment: str | None, survey: str) -> tuple[int, int] | None:
    """(same-survey window, any-survey window) for a customer of ``segment`` (None: the
    segment is not surveyed)."""
    fatigue = config.fatigue
    caps = fatigue.segments.get(segment or "")
    if caps is not None and not caps.enabled:
        return None
    per_survey = fatigue.per_survey_days.get(survey, 0)  # type: ignore[call-overload]
    any_survey = fatigue.any_survey_days
    if caps is not None:
        per_survey = caps.per_survey_days.get(survey, per_survey)  # type: ignore[call-overload]
        if caps.any_survey_days is not None:
            any_survey = caps.any_survey_days
    return int(per_survey * DAY_US), int(any_survey * DAY_US)


def decide(memory: SurveyMemory, candidate: Candidate, config: Surveys, at: int, now: int,
           segment: str | None, open_alert: bool, predicted: float | None = None,
           waited_for_prediction: bool = False) -> Decision:
    """Whether to send ``candidate`` at time ``at`` (its event time, or the clock's when a
    deferred request is looked at again); ``now``: the clock, for its validity;
    ``predicted``: the customer's probability of a low answer (None: unknown);
    ``waited_for_prediction``: the request already waited once for the predicted
    detractors (config.predicted_first). The reasons are checked in this order; the first
    that holds is given."""
    if now > candidate.valid_until:
        return EXPIRED
    plain = _plain(config)
    windows = plain.windows_of(segment, candidate.survey)
    if windows is None:
        return OPTED_OUT
    same, any_survey = windows
    interval = plain.intervals.get(candidate.trigger)
    survey = candidate.survey
    sent = memory.sent
    if interval is not None:
        name = candidate.trigger
        for t, _, trigger in sent:
            if trigger == name and abs(at - t) < interval:
                return INTERVAL
    for t, kind, _ in sent:
        if kind == survey and abs(at - t) < same:
            return Decision("suppress", "recently_surveyed")
    for t, _, _ in sent:
        if abs(at - t) < any_survey:
            return Decision("suppress", "recently_surveyed_any")
    for t, kind in memory.answers:
        if abs(at - t) < (same if kind == survey else any_survey):
            return Decision("suppress", "recently_answered")
    if open_alert:
        return Decision("later" if plain.open_alert_later else "suppress", "open_alert")
    wait = plain.failure_wait
    recent = [t for t in memory.failures if 0 <= at - t < wait]
    if recent:
        if plain.failure_later:
            return Decision("later", "recent_failure", max(recent) + wait)
        return Decision("suppress", "recent_failure")
    return _predicted_first(config, predicted, at, waited_for_prediction)


def _predicted_first(config: Surveys, predicted: float | None, at: int, waited: bool
                     ) -> Decision:
    """SEND to a predicted detractor, to one who waited their turn already, or to
    everyone without ``predicted_first``; others wait their turn."""
    first = config.predicted_first
    if first is None or waited or (predicted is not None
                                   and predicted >= first.min_probability):
        return SEND
    return Decision("later", "predicted_first", at + int(first.others_wait_hours * HOUR_US))


def record(memory: SurveyMemory, candidate: Candidate, decision: Decision, at: int,
           now: int, horizon: int) -> None:
    """Keep what ``decide`` gave at ``at`` in ``memory``: a request sent is remembered at
    that time, a deferred one waits. What lies more than ``horizon`` (Surveys.horizon_us)
    before both ``at`` and the clock is forgotten: a later decision is taken at a time no
    earlier than the clock minus the longest wait, so it cannot come within a window of
    it."""
    trigger, cause = candidate.trigger, candidate.cause
    # at most one request waits per trigger: found by trigger, not by a hash of every
    # waiting request, so a decision costs the same whatever the memory holds
    waiting = next(((c, d) for c, d in memory.pending if c.trigger == trigger), None)
    if waiting is not None and waiting[0].cause == cause:
        if decision.action == "later" and waiting[1] == decision:
            return  # looked at again, still waiting for the same thing
        memory.pending.remove(waiting)
    if decision.action == "send":
        memory.sent.append((at, candidate.survey, trigger))
        memory.sent.sort()
        del memory.sent[:-SENT_KEPT]
    elif decision.action == "later":
        if waiting is None or waiting[0].cause == cause:
            memory.pending.append((candidate, decision))
        elif waiting[0].cause_at <= candidate.cause_at:  # the newer interaction's replaces it
            memory.pending[memory.pending.index(waiting)] = (candidate, decision)
        else:
            return  # a newer request of this trigger already waits
    memory.decisions = [*memory.decisions, (candidate.request_id, candidate.survey,
                                            decision.action, decision.reason, at)
                        ][-DECISIONS_KEPT:]
    forget_before(memory, min(at, now) - horizon)


#: the longest of the short words a memory holds (survey, action, reason, request id)
WORD_CHARS = max(len("survey-") + 24, *(len(r) for r in get_args(Reason)))


def memory_bytes_bound(config: Surveys) -> int:
    """The most bytes one customer's SurveyMemory can take in the table (prefix
    included), whatever they did: every list at its cap, every string at its longest.
    Lists are capped by SENT_KEPT, KEPT, DECISIONS_KEPT and one waiting request per
    trigger; each element is counted with its brackets and comma. Words (survey, action,
    reason, request id) and trigger names are ASCII of known length; ids and names come
    from the contract and may hold any character."""
    number, name = INT_BYTES + 1, text_bytes(ID_CHARS) + 1
    word, trigger = 2 + WORD_CHARS + 1, 2 + TRIGGER_NAME_CHARS + 1
    sent = 3 + number + word + trigger
    answer = 3 + number + word
    candidate = (3 + trigger + word + 5 * name + 2 * number
                 + 3 + 3 * word + number)  # [candidate, [action, reason, due]]
    decision = 3 + 4 * word + number
    language = 3 + number + text_bytes(LANGUAGE_CHARS)
    keys = 6 * len('"s":,') + 2
    return (PREFIX_BYTES + keys + 2 * 6 + SENT_KEPT * sent + KEPT * answer
            + KEPT * number + language + max(len(config.triggers), 1) * candidate
            + DECISIONS_KEPT * decision)


def forget_before(memory: SurveyMemory, limit: int) -> None:
    """Forget what lies before ``limit``. Requests sent are kept by time alone (their
    count is bounded by the windows that space them); answers and failures keep only
    the newest KEPT as well (fewer of them only lets more requests through, never two
    within a window)."""
    memory.sent = [entry for entry in memory.sent if entry[0] >= limit]
    memory.answers = [entry for entry in memory.answers if entry[0] >= limit][-KEPT:]
    memory.failures = [t for t in memory.failures if t >= limit][-KEPT:]


def note_answer(memory: SurveyMemory, at: int, survey: str, language: str | None) -> None:
    memory.answers.append((at, survey))
    memory.answers.sort()
    memory.answers = memory.answers[-KEPT:]
    if language is not None and (memory.language is None or at >= memory.language[0]):
        memory.language = (at, language)


def note_failure(memory: SurveyMemory, at: int) -> None:
    memory.failures.append(at)
    memory.failures.sort()
    memory.failures = memory.failures[-KEPT:]


def language_of(memory: SurveyMemory, region: str | None, config: Surveys
                ) -> tuple[str, str]:
    """(language, where it comes from): the customer's latest answer's, else their
    region's, else the default."""
    if memory.language is not None:
        return memory.language[1], "last_answer"
    if region is not None and region in config.region_languages:
        return config.region_languages[region], "region"
    return config.default_language, "default"
