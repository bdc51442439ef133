"""The statistics of group drops: how surprising a group's score is against its baseline,
with the false discovery rate held over all groups of one evaluation, and a sequential
test that sees a sustained drop before its window closes.

- ``drop_test``: the drop of a metric from the baseline to the current window, its
  standard error and the one-sided p-value of a z-test (NPS: the per-answer values +1, 0,
  -1, whose variance is p + d - (p - d)^2; CSAT: the satisfied share; CES: the mean,
  from the sums of scores and squares), with the variance of both windows' answers
  together (the pooled variance of the two-sample score test), and its always-valid
  p-value (``always_valid_p``), the one Benjamini-Hochberg reads: a worker tests the
  window every 30 s as it fills, and the fixed-sample p-value of a test repeated that
  often would be small by chance many times a month.
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
    #: the p-value that stays valid however often the window is looked at as it fills
    #: (always_valid_p); None unless the test was given the drop worth catching
    always_valid: float | None = None


def drop_test(metric: Metric, current: Tally, baseline: Tally, conventions: Conventions,
              worth: float | None = None) -> DropTest | None:
    """The drop of ``metric`` and its p-value (and its always-valid p-value for drops of
    about ``worth`` points); None without answers on either side."""
    now, before = _mean_and_variance(metric, current, conventions), _mean_and_variance(
        metric, baseline, conventions)
    if now is None or before is None:
        return None
    (mean_now, var_now, n_now), (mean_before, var_before, n_before) = now, before
    # the variance of both sides' answers together, as it would be were nothing wrong
    # (the score test of two samples): a side's own variance from a few answers that
    # happen to agree would make a z of almost anything; 1/4 of the range squared when
    # every answer is the same on both sides (no z of infinity)
    n = n_now + n_before
    mean = (n_now * mean_now + n_before * mean_before) / n
    pooled = (n_now * (var_now + mean_now ** 2) + n_before * (var_before + mean_before ** 2)
              ) / n - mean ** 2
    variance = max(pooled, 0.0) or 0.25 * _range(metric) ** 2
    error = math.sqrt(variance * (1 / n_now + 1 / n_before))
    drop = mean_before - mean_now
    return DropTest(drop, error, 1.0 - NORMAL.cdf(drop / error),
                    None if worth is None else always_valid_p(drop, error, worth))


#: the scales of the mixture over drops, in margins: a drop of about the margin, and the
#: larger ones a small group can show at all
SCALES = (1.0, 2.0, 4.0, 8.0)


def always_valid_p(drop: float, error: float, worth: float) -> float:
    """A p-value of ``drop`` (standard error ``error``) that stays valid when the window
    is tested again and again as its answers come in: 1 / the likelihood ratio of "a
    drop" against "no drop", the drop's size averaged over half-normal mixtures of scales
    ``worth`` x SCALES (Robbins' normal mixture; the mixture SPRT of Johari, Koomen,
    Pekelis & Walsh, "Always valid inference", Operations Research 70(3), 2022, one-sided
    here). Under no drop each ratio, and so their mean, is a martingale as answers add up,
    so the chance it ever reaches 1/alpha is at most alpha (Ville's inequality), and
    Benjamini-Hochberg on these p-values holds the false discovery rate at whatever
    evaluation a drop is raised. One scale would fit one size of group: with a standard
    error far above the scale (a small group), evidence for a drop of that size grows too
    slowly; the mean over scales costs at most a factor of len(SCALES). With V = error^2
    and t = scale^2, each ratio is

        2 sqrt(V / (V + t)) exp(drop^2 t / (2 V (V + t))) Phi(drop sqrt(t / (V (V + t))))
    """
    variance = error * error
    logs = []
    for scale in SCALES:
        spread = (worth * scale) ** 2
        exponent = drop * drop * spread / (2 * variance * (variance + spread))
        tail = NORMAL.cdf(drop * math.sqrt(spread / (variance * (variance + spread))))
        logs.append(math.log(2.0) + 0.5 * math.log(variance / (variance + spread))
                    + exponent + math.log(max(tail, 1e-300)))
    top = max(logs)
    log_ratio = top + math.log(sum(math.exp(value - top) for value in logs) / len(logs))
    return 1.0 if log_ratio <= 0 else math.exp(-log_ratio)


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
