"""Counts of answers for one group and window, and the scores computed from them.

A tally is additive: partial tallies per partition merge by adding, and an answer can be
retracted by adding it with sign -1.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from cxstream.scoring.conventions import Conventions


def nps_group(score: int) -> str:
    """promoters 9-10, passives 7-8, detractors 0-6."""
    if score >= 9:
        return "promoters"
    return "passives" if score >= 7 else "detractors"


def add_answer(counts: dict[str, Any], survey: str, score: int, conventions: Conventions,
               sign: int = 1) -> None:
    """Add (sign 1) or retract (sign -1) one answer to a tally's counts, in place."""
    if survey == "nps":
        counts[nps_group(score)] += sign
    elif survey == "csat":
        counts["csat_n"] += sign
        counts["csat_satisfied"] += sign * (score >= conventions.csat_satisfied_min)
        counts["csat_sum"] += sign * score
        counts["csat_sum_sq"] += sign * score * score
    elif survey == "ces":
        effort = conventions.ces_effort(score)
        counts["ces_n"] += sign
        counts["ces_easy"] += sign * (effort >= conventions.ces_easy_min)
        counts["ces_hard"] += sign * (effort <= conventions.ces_hard_max)
        counts["ces_sum"] += sign * effort
        counts["ces_sum_sq"] += sign * effort * effort
    else:
        raise ValueError(f"unknown survey {survey!r}")


class Tally(BaseModel):
    """Answers of the three surveys for one group in one window."""

    model_config = ConfigDict(frozen=True)

    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_n: int = 0
    csat_satisfied: int = 0
    csat_sum: float = 0
    csat_sum_sq: float = 0
    ces_n: int = 0
    ces_easy: int = 0
    ces_hard: int = 0
    ces_sum: float = 0
    ces_sum_sq: float = 0

    def record(self, survey: str, score: int, conventions: Conventions, sign: int = 1) -> Tally:
        """This tally with one answer added (sign 1) or retracted (sign -1)."""
        counts = self.model_dump()
        add_answer(counts, survey, score, conventions, sign)
        return Tally(**counts)

    def merge(self, other: Tally) -> Tally:
        """The sum of two tallies (partials of different partitions)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return Tally(**{name: mine[name] + theirs[name] for name in mine})

    @property
    def nps_n(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def is_empty(self) -> bool:
        return self.nps_n == 0 and self.csat_n == 0 and self.ces_n == 0


def nps_score(tally: Tally, conventions: Conventions) -> dict[str, Any] | None:
    """NPS (-100..100) with sample size and margin of error; None without answers.

    The margin is z times the standard error of the difference of the promoter and
    detractor proportions: sqrt((p + d - (p - d)^2) / n), in NPS points.
    """
    if conventions.nps_denominator == "all_responses":
        n = tally.nps_n
    else:
        n = tally.promoters + tally.detractors
    if n == 0:
        return None
    p, d = tally.promoters / n, tally.detractors / n
    variance = max(p + d - (p - d) ** 2, 0.0) / n
    return {
        "score": round(100 * (p - d), 2),
        "n": n,
        "promoters": tally.promoters,
        "passives": tally.passives,
        "detractors": tally.detractors,
        "margin_of_error": round(100 * conventions.confidence_z * math.sqrt(variance), 2),
    }


def csat_score(tally: Tally, conventions: Conventions) -> dict[str, Any] | None:
    """CSAT % satisfied (top-2-box) and mean, each with its margin of error."""
    n = tally.csat_n
    if n == 0:
        return None
    share = tally.csat_satisfied / n
    mean = tally.csat_sum / n
    return {
        "score": round(100 * share, 2),
        "n": n,
        "satisfied": tally.csat_satisfied,
        "margin_of_error": round(100 * _proportion_margin(share, n, conventions), 2),
        "mean": round(mean, 3),
        "mean_margin_of_error": _mean_margin(tally.csat_sum, tally.csat_sum_sq, n, conventions),
    }


def ces_score(tally: Tally, conventions: Conventions) -> dict[str, Any] | None:
    """CES mean (7 = very easy) with its margin, and the % of hard answers."""
    n = tally.ces_n
    if n == 0:
        return None
    hard = tally.ces_hard / n
    return {
        "score": round(tally.ces_sum / n, 3),
        "n": n,
        "margin_of_error": _mean_margin(tally.ces_sum, tally.ces_sum_sq, n, conventions),
        "easy_pct": round(100 * tally.ces_easy / n, 2),
        "hard_pct": round(100 * hard, 2),
        "hard_margin_of_error": round(100 * _proportion_margin(hard, n, conventions), 2),
    }


def scores(tally: Tally, conventions: Conventions) -> dict[str, Any]:
    """All three scores of a tally (None where the survey has no answers)."""
    return {"nps": nps_score(tally, conventions), "csat": csat_score(tally, conventions),
            "ces": ces_score(tally, conventions)}


def _proportion_margin(share: float, n: int, conventions: Conventions) -> float:
    return conventions.confidence_z * math.sqrt(share * (1 - share) / n)


def _mean_margin(total: float, total_sq: float, n: int,
                 conventions: Conventions) -> float | None:
    """Margin of error of a mean from the sample variance; None below two answers."""
    if n < 2:
        return None
    variance = max((total_sq - total * total / n) / (n - 1), 0.0)
    return round(conventions.confidence_z * math.sqrt(variance / n), 3)
