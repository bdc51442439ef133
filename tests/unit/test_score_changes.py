"""A score's change between two windows carries its significance: the difference
against its own margin (scoring.reports.change_of), in the ranking, the group report,
the CLI and the console."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from cxstream.cli.commands.scores import change_text
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.reports import change_of, ranking
from cxstream.scoring.tallies import Tally, scores
from cxstream.scoring.windows import WindowSpec

CONVENTIONS = Conventions()
DAY = WindowSpec(name="day", seconds=86_400, retained=3)


def nps(promoters: int, passives: int, detractors: int) -> dict:  # type: ignore[type-arg]
    return scores(Tally(promoters=promoters, passives=passives, detractors=detractors),
                  CONVENTIONS)["nps"]


def test_a_large_swing_on_few_answers_is_noise() -> None:
    """7 answers against 3: from +33.3 to -14.3 looks serious and is not."""
    change = change_of("nps", nps(2, 2, 3), nps(2, 0, 1))
    assert change is not None and change["value"] == round(-100 / 7 - 100 / 3, 2)
    assert change["significant"] is False and change["direction"] == "noise"
    assert change["margin"] > abs(change["value"])  # type: ignore[operator]
    assert change_text(change).endswith("noise") and "[" not in change_text(change)


def test_a_real_drop_on_many_answers_is_significant() -> None:
    change = change_of("nps", nps(200, 100, 300), nps(300, 200, 100))  # -16.7 from +33.3
    assert change is not None and change["significant"] is True
    assert change["direction"] == "down" and change["value"] == -50.0
    assert change_text(change).startswith("[red]-50")


@given(st.tuples(*[st.integers(0, 400)] * 3), st.tuples(*[st.integers(0, 400)] * 3))
def test_the_change_is_the_difference_and_its_margin_combines_both(
        now: tuple[int, int, int], before: tuple[int, int, int]) -> None:
    current, previous = (nps(*now) if sum(now) else None), (nps(*before) if sum(before)
                                                              else None)
    change = change_of("nps", current, previous)
    if current is None or previous is None:
        assert change is None
        return
    assert change is not None
    assert change["value"] == round(current["score"] - previous["score"], 2)
    assert change["margin"] is not None and change["margin"] > 0  # never 0, even for n=1

    def adjusted_error(counts: tuple[int, int, int]) -> float:
        size = sum(counts) + 3
        p, d = (counts[0] + 1) / size, (counts[2] + 1) / size
        return 100 * math.sqrt((p + d - (p - d) ** 2) / size)

    margin = 1.96 * math.hypot(adjusted_error(now), adjusted_error(before))
    assert abs(change["margin"] - margin) < 0.01
    assert change["significant"] == (abs(current["score"] - previous["score"]) > margin)


def test_three_promoters_out_of_three_do_not_claim_a_zero_margin() -> None:
    """The plain margin of a window of identical answers is 0: any change would look
    real. With the pseudo-answers, 3/3 promoters against 3 of 4 is noise."""
    assert nps(3, 0, 0)["margin_of_error"] == 0
    change = change_of("nps", nps(3, 0, 1), nps(3, 0, 0))
    assert change is not None and change["significant"] is False


def test_ranked_rows_carry_the_previous_window_and_the_change() -> None:
    tallies = {("day", 86_400, "smb"): Tally(promoters=20, passives=10, detractors=70),
               ("day", 0, "smb"): Tally(promoters=60, passives=30, detractors=10),
               ("day", 86_400, "enterprise"): Tally(promoters=1, detractors=6)}
    rows = {row["key"]: row for row in ranking("segment", DAY, 86_400, "nps", 1, tallies,
                                               CONVENTIONS)["groups"]}
    assert rows["smb"]["previous"]["score"] == 50.0 and rows["smb"]["previous"]["n"] == 100
    assert rows["smb"]["change"]["significant"] is True
    assert rows["enterprise"]["previous"] is None and rows["enterprise"]["change"] is None
