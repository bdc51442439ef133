"""The model's probability in one pass over a customer's state, for the worker's hot path.

``Scorer.linear`` is the linear score of ``feature_row(...)`` without the row: the
weights are looked up once, when the model is loaded, and each feature's term is added as
it is counted (a one-hot feature adds its weight, a channel's share its weight times its
count, divided once). It is written by hand because no library scores one row in plain
Python faster than the row takes to build; tests/unit/test_prediction.py checks that it
equals the row's score on any state.
"""

from __future__ import annotations

import math
from typing import Any

from cxstream.scoring.features import (
    BAD_KINDS,
    DAY_US,
    DAYS_CAP,
    LEDGER_DAYS,
    SURVEYS,
    Thresholds,
)
from cxstream.scoring.journey import Journey


class Scorer:
    """One model's weights, laid out for ``linear``."""

    __slots__ = ("answers", "channels", "days_answer", "days_negative", "interactions_7d",
                 "interactions_30d", "intercept", "log_value", "negative_30d",
                 "negative_share", "segments", "surveys", "touchpoints", "unmapped", "week")

    def __init__(self, names: tuple[str, ...], weights: tuple[float, ...], intercept: float,
                 journey: Journey, thresholds: Thresholds) -> None:
        w = dict(zip(names, weights, strict=True))
        self.week = tuple(w[f"{kind}_7d"] for kind in BAD_KINDS)
        self.interactions_7d, self.interactions_30d = w["interactions_7d"], w["interactions_30d"]
        self.negative_30d, self.negative_share = w["negative_30d"], w["negative_share_30d"]
        self.days_negative = w["days_since_negative"]
        #: survey -> (weight of having answered, of a low answer, highest low score,
        #: weight of the score itself)
        self.answers = {survey: (w[f"has_{survey}"], w[f"{survey}_low"],
                                 thresholds.low_max[survey],
                                 w["nps_last"] / 10 if survey == "nps" else 0.0)
                        for survey in SURVEYS}
        self.days_answer, self.log_value = w["days_since_answer"], w["log_value"]
        self.surveys = {"nps": 0.0, "csat": w["survey_csat"], "ces": w["survey_ces"]}
        self.segments = _one_hot(w, "segment:")
        self.channels = _one_hot(w, "channel_share:")
        stages = _one_hot(w, "stage:")
        #: touchpoint -> the weight of its stage (journey.stage_of looked up once)
        self.touchpoints = {touchpoint: stages.get(stage, 0.0)
                            for touchpoint, stage in journey.touchpoints.items()}
        self.unmapped = stages.get(journey.unmapped, 0.0)
        self.intercept = intercept

    def linear(self, ledger: list[list[Any]], last_scores: dict[str, tuple[int, int, str]],
               value: float | None, segment: str | None, at_us: int, survey: str) -> float:
        """The model's linear score of the row feature_row would build."""
        today = at_us // DAY_US
        week_start, month_start = today - 7, today - LEDGER_DAYS
        f = a = e = w = p = n7 = bad30 = n30 = 0
        last_negative = None
        mix = 0.0
        touchpoint = ""
        channels = self.channels
        for bucket in ledger:
            day = bucket[0]
            if day > today or day < month_start:
                continue
            b2, b3, b4, b5, b6 = bucket[2], bucket[3], bucket[4], bucket[5], bucket[6]
            count = bucket[1]
            if day > week_start:
                f += b2
                a += b3
                e += b4
                w += b5
                p += b6
                n7 += count
            bad = b2 + b3 + b4 + b5 + b6
            bad30 += bad
            n30 += count
            if bad:
                last_negative = day
            for name, used in bucket[7].items():
                mix += channels.get(name, 0.0) * used
            touchpoint = bucket[8]
        week = self.week
        z = (self.intercept + week[0] * f + week[1] * a + week[2] * e + week[3] * w
             + week[4] * p + self.interactions_7d * n7 + self.negative_30d * bad30
             + self.interactions_30d * n30
             + self.days_negative * (LEDGER_DAYS if last_negative is None
                                     else today - last_negative))
        if n30:
            z += (self.negative_share * bad30 + mix) / n30
        z += (self._answered(last_scores, at_us) if last_scores
              else self.days_answer * DAYS_CAP) + self.surveys[survey]
        if value and value > 0:
            z += self.log_value * math.log1p(value)
        if segment is not None:
            z += self.segments.get(segment, 0.0)
        if touchpoint:
            z += self.touchpoints.get(touchpoint, self.unmapped)
        return z

    def _answered(self, last_scores: dict[str, tuple[int, int, str]], at_us: int) -> float:
        """The latest answers' part of the linear score, and how long ago they were."""
        z = 0.0
        last_answer = None
        answers = self.answers
        for name, record in last_scores.items():
            at = record[1]
            if at >= at_us:
                continue
            has, low, low_max, per_point = answers[name]
            score = record[0]
            z += has + per_point * score
            if score <= low_max:
                z += low
            if last_answer is None or at > last_answer:
                last_answer = at
        return z + self.days_answer * (DAYS_CAP if last_answer is None
                                       else min(DAYS_CAP, (at_us - last_answer) / DAY_US))


def _one_hot(weights: dict[str, float], prefix: str) -> dict[str, float]:
    return {name[len(prefix):]: weight for name, weight in weights.items()
            if name.startswith(prefix)}
