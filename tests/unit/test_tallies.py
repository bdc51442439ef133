"""NPS, CSAT and CES from tallies: groups, scores, margins of error, conventions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.tallies import Tally, ces_score, csat_score, nps_group, nps_score

DEFAULT = Conventions()


def tally_of(survey: str, scores: list[int], conventions: Conventions = DEFAULT) -> Tally:
    tally = Tally()
    for score in scores:
        tally = tally.record(survey, score, conventions)
    return tally


@pytest.mark.parametrize(("score", "group"), [(0, "detractors"), (6, "detractors"),
                                              (7, "passives"), (8, "passives"),
                                              (9, "promoters"), (10, "promoters")])
def test_nps_groups_at_their_edges(score: int, group: str) -> None:
    assert nps_group(score) == group


def test_nps_is_percent_promoters_minus_percent_detractors() -> None:
    result = nps_score(tally_of("nps", [10, 9, 9, 8, 7, 3, 0, 6, 10, 10]), DEFAULT)
    assert result is not None
    assert (result["promoters"], result["passives"], result["detractors"]) == (5, 2, 3)
    assert result["score"] == 20.0 and result["n"] == 10


def test_nps_margin_is_the_standard_error_of_the_difference_of_proportions() -> None:
    result = nps_score(tally_of("nps", [10] * 50 + [8] * 30 + [2] * 20), DEFAULT)
    assert result is not None
    p, d, n = 0.5, 0.2, 100
    expected = 100 * 1.96 * math.sqrt((p + d - (p - d) ** 2) / n)
    assert result["margin_of_error"] == pytest.approx(expected, abs=0.01)


def test_nps_denominator_without_passives() -> None:
    conventions = Conventions(nps_denominator="promoters_and_detractors")
    result = nps_score(tally_of("nps", [10, 10, 8, 8, 1]), conventions)
    assert result is not None
    assert result["n"] == 3 and result["score"] == pytest.approx(100 * (2 - 1) / 3, abs=0.01)


def test_empty_tallies_have_no_scores() -> None:
    assert nps_score(Tally(), DEFAULT) is None
    assert csat_score(Tally(), DEFAULT) is None
    assert ces_score(Tally(), DEFAULT) is None


def test_all_passives_leave_no_score_when_passives_are_excluded() -> None:
    conventions = Conventions(nps_denominator="promoters_and_detractors")
    assert nps_score(tally_of("nps", [7, 8]), conventions) is None


@given(st.lists(st.integers(0, 10), min_size=1, max_size=200))
def test_nps_stays_within_minus_and_plus_100(scores: list[int]) -> None:
    result = nps_score(tally_of("nps", scores), DEFAULT)
    assert result is not None
    assert -100 <= result["score"] <= 100
    assert result["margin_of_error"] >= 0
    assert result["n"] == len(scores)


def test_csat_is_top_two_box_with_mean() -> None:
    result = csat_score(tally_of("csat", [5, 4, 3, 1]), DEFAULT)
    assert result is not None
    assert result["score"] == 50.0 and result["mean"] == 3.25 and result["n"] == 4
    assert result["mean_margin_of_error"] is not None


def test_csat_single_answer_has_no_margin_for_its_mean() -> None:
    result = csat_score(tally_of("csat", [4]), DEFAULT)
    assert result is not None and result["mean_margin_of_error"] is None


def test_csat_satisfied_threshold_is_configurable() -> None:
    result = csat_score(tally_of("csat", [5, 4], Conventions(csat_satisfied_min=5)),
                        Conventions(csat_satisfied_min=5))
    assert result is not None and result["score"] == 50.0


def test_ces_mean_and_hard_share() -> None:
    result = ces_score(tally_of("ces", [7, 6, 5, 3, 1]), DEFAULT)
    assert result is not None
    assert result["score"] == pytest.approx(4.4)
    assert result["easy_pct"] == 60.0 and result["hard_pct"] == 40.0


def test_ces_direction_can_be_reversed_for_sources_where_1_is_easy() -> None:
    reversed_scale = Conventions(ces_high_is_easy=False)
    result = ces_score(tally_of("ces", [1, 1, 7], reversed_scale), reversed_scale)
    assert result is not None
    assert result["easy_pct"] == pytest.approx(66.67) and result["score"] == pytest.approx(5.0)


def test_conventions_reject_overlapping_ces_bands() -> None:
    with pytest.raises(ValueError, match="ces_hard_max"):
        Conventions(ces_hard_max=5, ces_easy_min=5)


@given(st.lists(st.tuples(st.sampled_from(["nps", "csat", "ces"]), st.integers(1, 5)),
                max_size=50),
       st.lists(st.tuples(st.sampled_from(["nps", "csat", "ces"]), st.integers(1, 5)),
                max_size=50))
def test_merging_partials_equals_counting_everything_once(
    left: list[tuple[str, int]], right: list[tuple[str, int]]
) -> None:
    def fold(answers: list[tuple[str, int]]) -> Tally:
        tally = Tally()
        for survey, score in answers:
            tally = tally.record(survey, score, DEFAULT)
        return tally

    assert fold(left).merge(fold(right)) == fold(left + right)


def test_retracting_an_answer_undoes_it() -> None:
    tally = tally_of("nps", [9, 3]).record("nps", 3, DEFAULT, sign=-1)
    assert tally == tally_of("nps", [9])


def test_unknown_survey_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown survey"):
        Tally().record("ltr", 5, DEFAULT)
