"""Journey stages (scoring.journey) and the score listing (scoring.reports.ranking):
stages in journey order, groups of few answers left out and counted with the reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.journey import STAGES, TOUCHPOINT_STAGES, Journey
from cxstream.scoring.reports import ranking
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import window_specs

DAY = next(spec for spec in window_specs(7) if spec.name == "day")


def tally(*scores: int) -> Tally:
    result = Tally()
    for score in scores:
        result = result.record("nps", score, Conventions())
    return result


def test_the_default_journey_maps_the_contracts_touchpoints_and_the_rest_is_other() -> None:
    journey = Journey()
    assert journey.order() == [*STAGES, "other"]
    assert [journey.stage_of(t) for t in ("onboarding", "checkout", "delivery", "support",
                                          "renewal", "kiosk")] == [
        "contact", "purchase", "delivery", "support", "renewal", "other"]
    assert set(TOUCHPOINT_STAGES.values()) <= set(STAGES)


def test_a_journey_names_its_mistakes() -> None:
    with pytest.raises(ValueError, match="stages not in stages: payment"):
        Journey(stages=["contact"], touchpoints={"checkout": "payment"})
    with pytest.raises(ValueError, match="listed twice"):
        Journey(stages=["a", "a"], touchpoints={})
    with pytest.raises(ValueError, match="is one of the stages"):
        Journey(stages=["a"], touchpoints={}, unmapped="a")


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]),
                       st.sampled_from(["contact", "purchase", "delivery", "support",
                                        "renewal", "other"]), max_size=5))
def test_any_stage_mapping_gives_each_touchpoint_one_stage_of_the_order(
        mapping: dict[str, str]) -> None:
    mapped = {touchpoint: stage for touchpoint, stage in mapping.items() if stage != "other"}
    journey = Journey(touchpoints=mapped)
    for touchpoint in "abcdef":
        assert journey.stage_of(touchpoint) in journey.order()
        assert journey.stage_of(touchpoint) == mapped.get(touchpoint, "other")


def test_stages_are_listed_in_journey_order_whatever_their_scores() -> None:
    tallies = {("day", 0, "renewal"): tally(10, 10), ("day", 0, "contact"): tally(0, 1),
               ("day", 0, "other"): tally(8), ("day", 0, "delivery"): tally(5, 6)}
    listed = ranking("stage", DAY, 0, "nps", 1, tallies, Conventions(),
                     Journey().order())
    assert [row["key"] for row in listed["groups"]] == ["contact", "delivery", "renewal",
                                                         "other"]
    by_score = ranking("stage", DAY, 0, "nps", 1, tallies, Conventions())
    # best first; a tie (contact and delivery at -100) by key
    assert [row["key"] for row in by_score["groups"]] == ["renewal", "other", "contact",
                                                           "delivery"]


def test_groups_under_the_minimum_are_counted_as_hidden_with_the_reason() -> None:
    tallies = {("day", 0, "agent-1"): tally(*[9] * 12), ("day", 0, "agent-2"): tally(0, 0),
               ("day", 0, "agent-3"): tally(*[7] * 10), ("day", 86_400, "agent-4"): tally(1)}
    listed = ranking("agent", DAY, 0, "nps", 10, tallies, Conventions(),
                     why_hidden="agents are ranked from 10 nps answers")
    assert [(row["key"], row["n"]) for row in listed["groups"]] == [("agent-1", 12),
                                                                    ("agent-3", 10)]
    assert listed["groups"][0]["margin_of_error"] >= 0
    assert listed["hidden"] == {"groups": 1, "reason": "agents are ranked from 10 nps answers"}
    plain = ranking("segment", DAY, 0, "nps", 3, tallies, Conventions())
    assert plain["hidden"] == {"groups": 1, "reason": "fewer than 3 nps answers"}
