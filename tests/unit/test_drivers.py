"""The split of a score's change across the parts of a group (scoring.drivers): exact for
any tallies, and it names the part that moved."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drivers import decompose, summary
from cxstream.scoring.tallies import Tally, scores

CONVENTIONS = Conventions()


def tally(promoters: int = 0, passives: int = 0, detractors: int = 0,
          csat: tuple[int, ...] = (), ces: tuple[int, ...] = ()) -> Tally:
    counts = Tally(promoters=promoters, passives=passives, detractors=detractors)
    for score in csat:
        counts = counts.record("csat", score, CONVENTIONS)
    for score in ces:
        counts = counts.record("ces", score, CONVENTIONS)
    return counts


tallies = st.builds(tally, st.integers(0, 40), st.integers(0, 40), st.integers(0, 40),
                    st.lists(st.integers(1, 5), max_size=8).map(tuple),
                    st.lists(st.integers(1, 7), max_size=8).map(tuple))
parts = st.dictionaries(st.sampled_from(["delivery", "billing", "app", "phone", "(other)"]),
                        st.tuples(tallies, tallies), max_size=5)


def merged(tallies: list[Tally]) -> Tally:
    total = Tally()
    for one in tallies:
        total = total.merge(one)
    return total


@given(parts, st.sampled_from(["nps", "csat", "ces"]),
       st.sampled_from(["all_responses", "promoters_and_detractors"]))
def test_the_parts_add_up_to_the_groups_change_for_any_tallies(
        split: dict[str, tuple[Tally, Tally]], metric: str, denominator: str) -> None:
    conventions = Conventions(nps_denominator=denominator)
    found = decompose(metric, split, conventions)  # type: ignore[arg-type]
    before = scores(merged([b for b, _ in split.values()]), conventions)[metric]
    now = scores(merged([n for _, n in split.values()]), conventions)[metric]
    if before is None or now is None:
        assert found.change is None and found.drivers == []
        return
    assert found.change is not None
    assert math.isclose(sum(d.points for d in found.drivers), found.change, abs_tol=1e-9)
    assert abs(found.change - (now["score"] - before["score"])) < 0.011  # scores round
    for driver in found.drivers:
        assert math.isclose(driver.rate + driver.mix, driver.points, abs_tol=1e-12)
        if driver.answers == 0 or driver.previous_answers == 0:
            assert driver.rate == 0  # a part in one window only: all mix


def test_a_degraded_touchpoint_leads_and_a_thin_one_is_never_named() -> None:
    before = {"delivery": (tally(60, 20, 20), tally(30, 10, 60)),  # 40 -> -30
              "billing": (tally(50, 30, 20), tally(45, 30, 25)),  # 30 -> 20
              "app": (tally(3, 0, 0), tally(0, 0, 3))}  # 100 -> -100, 3 answers
    found = decompose("nps", before, CONVENTIONS, min_answers=5)
    assert found.drivers[0].part == "delivery"
    assert found.change is not None and found.change < 0
    app = next(d for d in found.drivers if d.part == "app")
    assert app.few and "app" not in summary(found)
    assert summary(found).startswith("delivery -")
    assert summary(found, top=1).count(",") == 0


def test_a_part_new_in_the_window_moves_the_score_by_its_mix() -> None:
    found = decompose("nps", {"web": (tally(10, 0, 0), tally(10, 0, 0)),
                              "phone": (Tally(), tally(0, 0, 10))}, CONVENTIONS)
    assert found.change == -100.0
    phone = next(d for d in found.drivers if d.part == "phone")
    assert phone.rate == 0 and phone.mix < 0 and phone.previous_score is None
    assert summary(found) == "phone -75.0, web -25.0"


@given(st.dictionaries(st.sampled_from(["smb", "enterprise", "3:x"]), parts, max_size=3))
def test_the_drivers_of_every_group_equal_each_groups_own(
        groups: dict[str, dict[str, tuple[Tally, Tally]]]) -> None:
    from cxstream.scoring.drivers import drivers_of_groups
    from cxstream.scoring.groups import part_key
    from cxstream.scoring.windows import WindowSpec

    spec = WindowSpec(name="day", seconds=86_400, retained=62)
    previous, current = 0, 86_400
    rows = {}
    for group, its_parts in groups.items():
        for part, (before, now) in its_parts.items():
            rows[("day", previous, part_key(group, part))] = before
            rows[("day", current, part_key(group, part))] = now
            rows[("week", current, part_key(group, part))] = now  # another window: ignored
    found = drivers_of_groups("nps", spec, (previous, current), rows, CONVENTIONS, 5)
    assert set(found) == {group for group, its_parts in groups.items() if its_parts}
    for group, split in found.items():
        assert split == decompose("nps", groups[group], CONVENTIONS, 5)
