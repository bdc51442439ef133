"""What the prediction model sees of a customer (docs/predictions.md, "Features").

Shape: a customer's plain state (its ledger of recent days, latest answers and profile)
and a moment -> one row of numbers, in the order of ``feature_names(vocabulary)``.

The ledger is the part of the state kept for the model alone: one bucket per day with an
interaction, the last ``LEDGER_DAYS`` days before the customer's newest one, so it is
bounded (31 buckets, ``CHANNELS_PER_DAY`` channel names and one other each) whatever the
customer does.
The interaction records of the state cannot serve: they live in the history, read from
the table one key each, and only the last 20 are kept.

No leak: a row for moment ``at`` reads only days before ``at``'s day plus the earlier part
of that day as folded so far, and answers strictly before ``at``. Training replays the
log in time order (cli.model_training), so nothing later than an answer is folded when
its row is built; the worker folds in arrival order and scores at its newest event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cxstream.scoring.customer import StateRules
from cxstream.scoring.journey import Journey

FEATURE_VERSION = 1
DAY_US = 86_400_000_000
LEDGER_DAYS = 30
CHANNELS_PER_DAY = 4
OTHER_CHANNEL = "~other"
#: a bucket: [day, interactions, failures, abandoned, escalated, long waits,
#: negative posts, {channel: interactions}, touchpoint of the day's latest interaction]
B_DAY, B_COUNT, B_CHANNELS, B_TOUCHPOINT = 0, 1, 7, 8
BAD_KINDS = ("failures", "abandoned", "escalated", "long_waits", "negative_posts")
OUTCOME_SLOT = {"failure": 2, "abandoned": 3, "escalated": 4}
LONG_WAIT_SLOT, NEGATIVE_POST_SLOT = 5, 6
SURVEYS = ("nps", "csat", "ces")
DAYS_CAP = 90.0
#: the features that do not depend on the vocabulary, in row order
FIXED = (*(f"{kind}_7d" for kind in BAD_KINDS), "interactions_7d", "negative_30d",
         "interactions_30d", "negative_share_30d", "days_since_negative", "nps_last",
         *(f"{survey}_low" for survey in SURVEYS), *(f"has_{survey}" for survey in SURVEYS),
         "days_since_answer", "log_value", "survey_csat", "survey_ces")


@dataclass(frozen=True)
class Vocabulary:
    """The names a model knows, fixed when it is trained (others count as none of them)."""

    segments: tuple[str, ...]
    channels: tuple[str, ...]
    stages: tuple[str, ...]

    def as_json(self) -> dict[str, list[str]]:
        return {"segments": list(self.segments), "channels": list(self.channels),
                "stages": list(self.stages)}


def feature_names(vocabulary: Vocabulary) -> list[str]:
    return [*FIXED, *(f"segment:{s}" for s in vocabulary.segments),
            *(f"channel_share:{c}" for c in vocabulary.channels),
            *(f"stage:{s}" for s in vocabulary.stages)]


@dataclass(frozen=True)
class Thresholds:
    """What counts as a bad interaction and a low answer (StateRules' values)."""

    long_wait_seconds: float
    negative_sentiment_max: float
    low_max: dict[str, int]  # survey -> highest low score, on the survey's own scale

    def is_low(self, survey: str, score: int) -> bool:
        return score <= self.low_max[survey]

    @classmethod
    def of(cls, rules: StateRules) -> Thresholds:
        return cls(rules.long_wait_seconds, rules.negative_sentiment_max,
                   {"nps": rules.nps_low_max, "csat": rules.csat_low_max,
                    "ces": rules.ces_low_max})


def note_interaction(ledger: list[list[Any]], at_us: int, channel: str, touchpoint: str,
                     outcome: str | None, wait_seconds: float | None,
                     sentiment: float | None, thresholds: Thresholds) -> None:
    """Count one interaction in ``ledger`` (in place; days in order, oldest dropped)."""
    day = at_us // DAY_US
    if ledger and day < ledger[-1][B_DAY] - LEDGER_DAYS:
        return  # older than every day kept
    bucket = _bucket(ledger, day)
    bucket[B_COUNT] += 1
    slot = OUTCOME_SLOT.get(outcome or "")
    if slot is not None:
        bucket[slot] += 1
    if wait_seconds is not None and wait_seconds >= thresholds.long_wait_seconds:
        bucket[LONG_WAIT_SLOT] += 1
    if sentiment is not None and sentiment <= thresholds.negative_sentiment_max:
        bucket[NEGATIVE_POST_SLOT] += 1
    channels = bucket[B_CHANNELS]
    if channel not in channels and len(channels) >= CHANNELS_PER_DAY:
        channel = OTHER_CHANNEL
    channels[channel] = channels.get(channel, 0) + 1
    bucket[B_TOUCHPOINT] = touchpoint
    horizon = ledger[-1][B_DAY] - LEDGER_DAYS
    while ledger[0][B_DAY] < horizon:
        del ledger[0]


def _bucket(ledger: list[list[Any]], day: int) -> list[Any]:
    if ledger and ledger[-1][B_DAY] == day:
        return ledger[-1]  # the usual case: today
    position = len(ledger)
    while position and ledger[position - 1][B_DAY] > day:
        position -= 1
    if position and ledger[position - 1][B_DAY] == day:
        return ledger[position - 1]
    bucket: list[Any] = [day, 0, 0, 0, 0, 0, 0, {}, ""]
    ledger.insert(position, bucket)
    return bucket


def feature_row(ledger: list[list[Any]], last_scores: dict[str, tuple[int, int, str]],
                value: float | None, segment: str | None, at_us: int, survey: str,
                vocabulary: Vocabulary, journey: Journey, thresholds: Thresholds
                ) -> list[float]:
    """The row for a prediction of an answer to ``survey`` at ``at_us``."""
    today = at_us // DAY_US
    week: list[float] = [0.0] * 6  # the five bad kinds, then interactions
    negative_30 = count_30 = 0.0
    last_negative_day: int | None = None
    channels: dict[str, float] = {}
    touchpoint = ""
    for bucket in ledger:
        day = bucket[B_DAY]
        if day > today or day < today - LEDGER_DAYS:
            continue
        bad = bucket[2] + bucket[3] + bucket[4] + bucket[5] + bucket[6]
        if day > today - 7:
            for slot in range(5):
                week[slot] += bucket[2 + slot]
            week[5] += bucket[B_COUNT]
        negative_30 += bad
        count_30 += bucket[B_COUNT]
        if bad:
            last_negative_day = day
        for name, count in bucket[B_CHANNELS].items():
            channels[name] = channels.get(name, 0) + count
        touchpoint = bucket[B_TOUCHPOINT]
    answers = {name: record for name, record in last_scores.items() if record[1] < at_us}
    last_answer = max((record[1] for record in answers.values()), default=None)
    nps = answers.get("nps")
    row = [*week, negative_30, count_30, negative_30 / count_30 if count_30 else 0.0,
           float(LEDGER_DAYS if last_negative_day is None else today - last_negative_day),
           nps[0] / 10 if nps else 0.0]
    row += [1.0 if s in answers and thresholds.is_low(s, answers[s][0]) else 0.0
            for s in SURVEYS]
    row += [1.0 if s in answers else 0.0 for s in SURVEYS]
    row += [DAYS_CAP if last_answer is None
            else min(DAYS_CAP, (at_us - last_answer) / DAY_US),
            math.log1p(value) if value and value > 0 else 0.0,
            1.0 if survey == "csat" else 0.0, 1.0 if survey == "ces" else 0.0]
    row += [1.0 if segment == name else 0.0 for name in vocabulary.segments]
    row += [channels.get(name, 0) / count_30 if count_30 else 0.0
            for name in vocabulary.channels]
    stage = journey.stage_of(touchpoint) if touchpoint else None
    row += [1.0 if stage == name else 0.0 for name in vocabulary.stages]
    return row
