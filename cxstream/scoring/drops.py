"""The statistics of group drops: how surprising a group's score is against its baseline,
with the false discovery rate held over all groups of one evaluation, and a sequential
test that sees a sustained drop before its window closes.

- ``drop_test``: the drop of a metric from the baseline to the current window, its
  standard error and the one-sided p-value of a z-test (NPS: the per-answer values +1, 0,
  -1, whose variance is p + d - (p - d)^2; CSAT: the satisfied share; CES: the mean,
  from the sums of scores and squares).
- ``benjamini_hochberg``: which of m p-values are discoveries at false discovery rate q
  (Benjamini & Hochberg, J. R. Stat. Soc. B 57(1), 1995, step-up procedure): sort them,
  find the largest k with p_(k) <= k q / m, and reject the k smallest. Written here (a
  sort and a scan) rather than taken from scipy.stats.false_discovery_control, which
  would bring scipy and numpy for ten lines.
- ``cusum_step``: a CUSUM (Page, Biometrika 41, 1954) of the answers' categories (NPS:
  promoters, passives, detractors; CSAT: unsatisfied or not; CES: hard or not; as the
  Bernoulli CUSUM of Reynolds & Stoumbos, J. Qual. Technol. 31(1), 1999, with three
  categories for NPS) against the baseline's shares p0, tuned to a drop p1 of the size
  worth catching: S <- max(0, S + sum_i n_i ln(p1_i / p0_i)), a drop when S >= h. It
  takes the counts since the last step, so it runs on tallies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drivers import Metric, weight_and_total
from cxstream.scoring.tallies import Tally

NORMAL = NormalDist()


@dataclass(frozen=True)
class DropTest:
    drop: float  # baseline score minus current score (positive: the score fell)
    standard_error: float
    p_value: float  # one-sided: of a drop at least this large, were nothing wrong


def drop_test(metric: Metric, current: Tally, baseline: Tally, conventions: Conventions
              ) -> DropTest | None:
    """The drop of ``metric`` and its p-value; None without answers on either side."""
    now, before = _mean_and_variance(metric, current, conventions), _mean_and_variance(
        metric, baseline, conventions)
    if now is None or before is None:
        return None
    (mean_now, var_now, n_now), (mean_before, var_before, n_before) = now, before
    # a variance of 0 on a side (every answer the same) is estimated from the other
    # side, and from 1/4 of the range when both agree exactly: no z of infinity
    pooled = max(var_now, var_before) or 0.25 * _range(metric) ** 2
    error = math.sqrt((var_now or pooled) / n_now + (var_before or pooled) / n_before)
    drop = mean_before - mean_now
    return DropTest(drop, error, 1.0 - NORMAL.cdf(drop / error))


def _range(metric: Metric) -> float:
    return {"nps": 200.0, "csat": 100.0, "ces": 6.0}[metric]


def _mean_and_variance(metric: Metric, tally: Tally, conventions: Conventions
                       ) -> tuple[float, float, float] | None:
    n, total = weight_and_total(metric, tally, conventions)
    if not n:
        return None
    mean = total / n
    if metric == "nps":
        p, d = tally.promoters / n, tally.detractors / n
        variance = 1e4 * max(p + d - (p - d) ** 2, 0.0)
    elif metric == "csat":
        share = tally.csat_satisfied / n
        variance = 1e4 * share * (1 - share)
    else:
        variance = max(tally.ces_sum_sq / n - mean * mean, 0.0)
    return mean, variance, n


def benjamini_hochberg(p_values: list[float], q: float) -> list[bool]:
    """Which of ``p_values`` are discoveries at false discovery rate ``q``, in their
    order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cut = 0
    for rank, i in enumerate(order, 1):
        if p_values[i] <= rank * q / m:
            cut = rank
    found = [False] * m
    for i in order[:cut]:
        found[i] = True
    return found


def categories(metric: Metric, tally: Tally, conventions: Conventions) -> tuple[int, ...]:
    """The counts the CUSUM follows: NPS (promoters, passives, detractors) as the score
    counts them; CSAT (not satisfied, satisfied); CES (hard, not hard)."""
    if metric == "nps":
        passives = tally.passives if conventions.nps_denominator == "all_responses" else 0
        return tally.promoters, passives, tally.detractors
    if metric == "csat":
        return tally.csat_n - tally.csat_satisfied, tally.csat_satisfied
    return tally.ces_hard, tally.ces_n - tally.ces_hard


def shifted_shares(metric: Metric, shares: tuple[float, ...], shift: float
                   ) -> tuple[float, ...]:
    """The shares after a drop of ``shift`` (0.1: 10 NPS points, from promoters to
    detractors half each; 10 points more unsatisfied CSAT or hard CES answers)."""
    if metric == "nps":
        move = min(shift / 2, shares[0] - FLOOR)
        return shares[0] - move, shares[1], shares[2] + move
    move = min(shift, shares[1] - FLOOR)
    return shares[0] + move, shares[1] - move


#: no share is taken as smaller than this (a log of zero has no bound)
FLOOR = 0.005


def baseline_shares(counts: tuple[int, ...]) -> tuple[float, ...]:
    total = sum(counts)
    raw = [max(count / total, FLOOR) for count in counts]
    return tuple(share / sum(raw) for share in raw)


def cusum_step(statistic: float, counts: tuple[int, ...], p0: tuple[float, ...],
               p1: tuple[float, ...]) -> float:
    """The CUSUM after the answers ``counts`` (per category) more: the log-likelihood
    ratio of the shares ``p1`` against ``p0``, added, never below zero."""
    step = sum(count * math.log(after / before)
               for count, before, after in zip(counts, p0, p1, strict=True) if count)
    return max(0.0, statistic + step)
