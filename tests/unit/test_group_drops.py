"""Group drops over every dimension (alerts.group_drops, scoring.drops): the false
discovery rate held by Benjamini-Hochberg, a z-test that knows noise from a drop, and a
CUSUM that sees a sustained rise of bad answers before the window closes."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from statistics import NormalDist

from hypothesis import given
from hypothesis import strategies as st

from cxstream.alerts.config import load_rules
from cxstream.alerts.group_drops import DropEvaluation
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drops import (
    always_valid_p,
    baseline_shares,
    benjamini_hochberg,
    cusum_step,
    drop_test,
    shifted_shares,
)
from cxstream.scoring.tallies import Tally

CONVENTIONS = Conventions()
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
START = 1_796_083_200  # 2026-12-07 00:00 UTC


def nps(promoters: int, passives: int, detractors: int) -> Tally:
    return Tally(promoters=promoters, passives=passives, detractors=detractors)


@given(st.lists(st.floats(0, 1), max_size=40), st.floats(0.001, 0.5))
def test_benjamini_hochberg_rejects_the_k_smallest_for_the_largest_k_that_passes(
        p_values: list[float], q: float) -> None:
    found = benjamini_hochberg(p_values, q)
    m = len(p_values)
    ranked = sorted(p_values)
    k = max((rank for rank in range(1, m + 1) if ranked[rank - 1] <= rank * q / m),
            default=0)
    assert sum(found) == k
    if k:
        assert all(found[i] == (p_values[i] <= ranked[k - 1]) for i in range(m)) or \
            ranked.count(ranked[k - 1]) > 1  # ties at the cut: any k of them


def test_benjamini_hochberg_on_a_worked_example() -> None:
    # q = 0.05, m = 5: thresholds 0.01, 0.02, 0.03, 0.04, 0.05 for the sorted 0.001,
    # 0.025, 0.03, 0.04, 0.2: the 4th (0.04) is the largest that passes: 4 discoveries
    assert benjamini_hochberg([0.001, 0.04, 0.025, 0.2, 0.03], 0.05) == [
        True, True, True, False, True]
    assert benjamini_hochberg([0.001, 0.045, 0.025, 0.2, 0.035], 0.05) == [
        True, False, False, False, False]


def test_the_drop_test_knows_a_real_drop_from_noise() -> None:
    real = drop_test("nps", nps(40, 30, 130), nps(450, 350, 200), CONVENTIONS)
    assert real is not None and real.drop > 40 and real.p_value < 1e-9
    noise = drop_test("nps", nps(44, 36, 20), nps(450, 350, 200), CONVENTIONS)
    assert noise is not None and abs(noise.drop) < 5 and noise.p_value > 0.2
    same = drop_test("ces", Tally(ces_n=3, ces_sum=21, ces_sum_sq=147),
                     Tally(ces_n=3, ces_sum=21, ces_sum_sq=147), CONVENTIONS)
    assert same is not None and same.p_value == 0.5  # no variance anywhere: no z of inf
    assert drop_test("csat", Tally(), nps(1, 0, 0), CONVENTIONS) is None


def test_the_drop_test_uses_the_variance_of_both_windows_together() -> None:
    # 30 answers, nearly all detractors, against a baseline of 1,000: their own variance
    # is small (they agree), which would make z about 19; under no drop both windows are
    # one population, whose variance is that of the 1,030 answers together
    current, baseline = nps(1, 1, 28), nps(450, 350, 200)
    test = drop_test("nps", current, baseline, CONVENTIONS)
    assert test is not None
    together = nps(451, 351, 228)
    p, d = together.promoters / 1030, together.detractors / 1030
    variance = 1e4 * (p + d - (p - d) ** 2)
    assert math.isclose(test.standard_error, math.sqrt(variance * (1 / 30 + 1 / 1000)))
    assert math.isclose(test.drop, 25 - (1 - 28) / 30 * 100)
    assert 5 < test.drop / test.standard_error < 8


@given(st.tuples(*[st.integers(0, 50)] * 3), st.tuples(*[st.integers(0, 500)] * 3))
def test_the_pooled_variance_equals_the_merged_tallys(now: tuple[int, int, int],
                                                      before: tuple[int, int, int]) -> None:
    current, baseline = nps(*now), nps(*before)
    test = drop_test("nps", current, baseline, CONVENTIONS)
    if not sum(now) or not sum(before):
        assert test is None
        return
    assert test is not None
    merged = current.merge(baseline)
    n = merged.nps_n
    p, d = merged.promoters / n, merged.detractors / n
    variance = 1e4 * (p + d - (p - d) ** 2) or 0.25 * 200 ** 2
    expected = math.sqrt(variance * (1 / sum(now) + 1 / sum(before)))
    assert math.isclose(test.standard_error, expected, rel_tol=1e-6, abs_tol=1e-9)


def test_the_always_valid_p_value_holds_however_often_it_is_looked_at() -> None:
    # under no drop: the mean of n answers (standard deviation 1) looked at after each
    # of 200 answers, in 1,000 streams; how many streams ever fall under alpha
    rng = random.Random(7)
    alpha, streams, looks = 0.05, 1000, 200
    ever_always, ever_fixed = 0, 0
    for _ in range(streams):
        total, always, fixed = 0.0, False, False
        for n in range(1, looks + 1):
            total += rng.gauss(0.0, 1.0)
            drop, error = total / n, 1 / math.sqrt(n)
            always = always or always_valid_p(drop, error, 0.25) <= alpha
            fixed = fixed or 1 - NormalDist().cdf(drop / error) <= alpha
        ever_always += always
        ever_fixed += fixed
    # Ville: at most alpha (here well under: the bound holds for any number of looks)
    assert ever_always / streams <= alpha
    assert ever_fixed / streams > 4 * alpha  # the fixed-sample p-value, looked at as often


def test_the_always_valid_p_value_grows_with_the_evidence() -> None:
    assert always_valid_p(0.0, 5.0, 10.0) == 1.0 and always_valid_p(-30.0, 5.0, 10.0) == 1.0
    ps = [always_valid_p(drop, 5.0, 10.0) for drop in (10, 15, 20, 30, 40)]
    assert ps == sorted(ps, reverse=True) and ps[-1] < 1e-9
    # the same drop, more answers (a smaller error): more evidence
    assert always_valid_p(20.0, 4.0, 10.0) < always_valid_p(20.0, 8.0, 10.0)
    # a small group's large drop is found (the larger scales of the mixture): NPS -100
    # against 0 with 30 answers on each side (error about 22 points)
    assert always_valid_p(100.0, 22.4, 10.0) < 1e-3


def test_the_cusum_adds_evidence_and_never_goes_below_zero() -> None:
    p0 = baseline_shares((50, 30, 20))
    p1 = shifted_shares("nps", p0, 0.1)  # NPS 10 points lower: promoters to detractors
    assert math.isclose(p1[0], 0.45) and math.isclose(p1[2], 0.25) and p1[1] == p0[1]
    rising = 0.0
    for _ in range(10):
        rising = cusum_step(rising, (4, 3, 3), p0, p1)  # NPS +10 against +30
    assert rising > 0
    assert cusum_step(0.0, (60, 30, 10), p0, p1) == 0.0  # better than usual: nothing
    both = cusum_step(cusum_step(0.0, (2, 1, 3), p0, p1), (2, 2, 3), p0, p1)
    assert math.isclose(both, cusum_step(0.0, (4, 3, 6), p0, p1))  # counts add up
    assert shifted_shares("csat", baseline_shares((10, 90)), 0.1) == (0.2, 0.8)
    assert baseline_shares((0, 100))[0] > 0  # never a share of zero


def groups_with(drop: dict[tuple[str, str], Tally], count: int, seed: int
                ) -> dict[tuple[str, str], tuple[Tally, Tally]]:
    """``count`` groups of 300 answers a day whose NPS stays at +25, and ``drop``'s."""
    rng = random.Random(seed)
    groups = {}
    for n in range(count):
        def day(size: int) -> Tally:
            picks = [rng.choices((0, 1, 2), (0.45, 0.35, 0.20))[0] for _ in range(size)]
            return nps(picks.count(0), picks.count(1), picks.count(2))
        groups[(("channel", "touchpoint", "stage")[n % 3], f"g{n}")] = (day(300), day(2100))
    baseline = nps(945, 735, 420)
    groups.update({group: (current, baseline) for group, current in drop.items()})
    return groups


def test_among_200_quiet_groups_only_the_one_that_dropped_is_raised() -> None:
    config = load_rules()
    evaluation = DropEvaluation(config, CONVENTIONS)
    dropped = nps(90, 90, 120)  # NPS -10 against +25
    alerts, _ = evaluation.evaluate(groups_with({("channel", "web"): dropped}, 200, 1),
                                    "day", START, NOW)
    assert [(a.reason["dimension"], a.reason["key"], a.reason["test"]) for a in alerts] == [
        ("channel", "web", "fdr")]
    alert = alerts[0]
    assert alert.segment is None and alert.summary.startswith("NPS of channel web fell to")
    assert alert.reason["tested"] == 201 and alert.reason["p_value"] < 0.05 / 201


def test_the_cusum_catches_detractors_that_come_late_in_a_good_window() -> None:
    rules = load_rules()  # at a threshold of 10 (the shipped one is 11: two steps later)
    config = rules.model_copy(update={"segment_drop": rules.segment_drop.model_copy(
        update={"cusum_threshold": 10.0})})
    evaluation = DropEvaluation(config, CONVENTIONS)
    baseline = nps(1050, 700, 350)  # 2,100 answers: NPS +33
    morning = (300, 200, 100)  # 600 answers as usual
    raised_at = None
    for step in range(0, 40):  # every evaluation, 10 more answers: 40 % detractors
        promoters, passives, detractors = (morning[0] + 4 * step, morning[1] + 2 * step,
                                           morning[2] + 4 * step)
        alerts, _ = evaluation.evaluate(
            {("touchpoint", "delivery"): (nps(promoters, passives, detractors), baseline)},
            "day", START, NOW)
        if alerts:
            raised_at = step, alerts[0].reason["test"], alerts[0].reason["drop"]
            break
    # 160 answers at NPS 0 after 600 as usual: the window's NPS has fallen by 7 points
    # only, under the margin of 10 a z-test's discovery needs, and the CUSUM signals:
    # each step adds 4 ln(0.45 / 0.5) + 4 ln((1/6 + 0.05) / (1/6)) = 0.628, so at 10
    # after 16 steps
    assert raised_at is not None and raised_at[:2] == (16, "cusum"), raised_at
    assert raised_at[2] < load_rules().segment_drop.margins["nps"]


def test_the_margin_test_of_before_is_kept_as_a_choice() -> None:
    rules = load_rules()
    config = rules.model_copy(update={"segment_drop": rules.segment_drop.model_copy(
        update={"test": "margin"})})
    evaluation = DropEvaluation(config, CONVENTIONS)
    alerts, _ = evaluation.evaluate({("segment", "smb"): (nps(10, 10, 20), nps(50, 30, 20))},
                                    "day", START, NOW)
    assert [(a.segment, a.reason["test"]) for a in alerts] == [("smb", "margin")]
    assert evaluation.cusums == {}  # the margin test keeps no CUSUM
