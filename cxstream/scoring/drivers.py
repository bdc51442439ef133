"""Why a group's score moved: its change between two windows split exactly across the
parts of a second dimension (the touchpoints, channels or stages of a segment, say).

Every score here is a weighted mean over the parts: NPS, CSAT % satisfied and the CES
mean are each S = sum_j w_j s_j, with w_j the part's share of the group's answers and s_j
its own score. The change splits into one term per part,

    w_j' s_j' - w_j s_j = rate_j + mix_j,
    rate_j = (w_j + w_j') / 2 * (s_j' - s_j)          (the part's own score moved)
    mix_j  = (w_j' - w_j) * ((s_j + s_j') / 2 - S_mid) (its share moved; S_mid is the
                                                        mean of the two group scores)

(primes: the current window). With the midpoint weights, rate + mix is the part's term
w_j' s_j' - w_j s_j less (w_j' - w_j) S_mid, and those corrections add up to zero (the
shares' changes do), so the parts' points add up to the group's change exactly, whatever
the tallies (tests/unit/test_drivers.py); S_mid makes a part that grows count against
the score only if it is worse than the group. A part missing from a window takes its
other window's score, so its points are all mix.

Shape: (metric, {part: (previous tally, current tally)}) -> Decomposition
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.groups import parse_part_key
from cxstream.scoring.reports import Tallies
from cxstream.scoring.tallies import Tally
from cxstream.scoring.windows import WindowSpec, from_epoch

Metric = Literal["nps", "csat", "ces"]
METRICS: tuple[Metric, ...] = ("nps", "csat", "ces")


def weight_and_total(metric: Metric, tally: Tally, conventions: Conventions
                     ) -> tuple[float, float]:
    """(answers counted, sum of their scores) of ``metric``: the score is sum / answers."""
    if metric == "nps":
        n = tally.nps_n if conventions.nps_denominator == "all_responses" else (
            tally.promoters + tally.detractors)
        return n, 100.0 * (tally.promoters - tally.detractors)
    if metric == "csat":
        return tally.csat_n, 100.0 * tally.csat_satisfied
    return tally.ces_n, tally.ces_sum


@dataclass(frozen=True)
class Driver:
    part: str
    points: float  # rate + mix: what the part moved the group's score by
    rate: float
    mix: float
    answers: int  # in the current window
    previous_answers: int
    score: float | None  # the part's own score in the current window
    previous_score: float | None
    few: bool  # fewer answers than the minimum in a window it has answers in: never named


@dataclass(frozen=True)
class Decomposition:
    metric: Metric
    score: float | None
    previous_score: float | None
    change: float | None  # None without answers in one of the windows
    drivers: list[Driver]  # largest in the change's direction first


def decompose(metric: Metric, parts: dict[str, tuple[Tally, Tally]],
              conventions: Conventions, min_answers: int = 1) -> Decomposition:
    """Split the change of ``metric`` of the group made of ``parts`` (part -> (previous
    tally, current tally)) between the two windows."""
    counted = {part: (weight_and_total(metric, before, conventions),
                      weight_and_total(metric, now, conventions))
               for part, (before, now) in parts.items()}
    n_before = sum(before[0] for before, _ in counted.values())
    n_now = sum(now[0] for _, now in counted.values())
    score_before = (sum(before[1] for before, _ in counted.values()) / n_before
                    if n_before else None)
    score_now = sum(now[1] for _, now in counted.values()) / n_now if n_now else None
    if score_before is None or score_now is None:
        return Decomposition(metric, score_now, score_before, None, [])
    middle = (score_before + score_now) / 2
    drivers = []
    for part, ((w_before, t_before), (w_now, t_now)) in counted.items():
        if not w_before and not w_now:
            continue
        s_before = t_before / w_before if w_before else None
        s_now = t_now / w_now if w_now else None
        old = s_before if s_before is not None else s_now
        new = s_now if s_now is not None else s_before
        assert old is not None and new is not None
        share_before, share_now = w_before / n_before, w_now / n_now
        rate = (share_before + share_now) / 2 * (new - old)
        mix = (share_now - share_before) * ((old + new) / 2 - middle)
        thinnest = min(w for w in (w_now, w_before) if w)  # of the windows it has answers in
        drivers.append(Driver(part, rate + mix, rate, mix, int(w_now), int(w_before), s_now,
                              s_before, thinnest < min_answers))
    change = score_now - score_before
    direction = -1.0 if change < 0 else 1.0
    drivers.sort(key=lambda driver: (-direction * driver.points, driver.part))
    return Decomposition(metric, score_now, score_before, change, drivers)


def summary(decomposition: Decomposition, top: int = 2) -> str:
    """"delivery -15.2, billing -6.1": the largest named drivers in the change's
    direction (parts with too few answers are never named); "" if none."""
    change = decomposition.change
    if change is None or change == 0:
        return ""
    named = [driver for driver in decomposition.drivers
             if not driver.few and driver.points * change > 0][:top]
    return ", ".join(f"{driver.part} {driver.points:+.1f}" for driver in named)


def drivers_report(dimension: str, key: str, by: str, spec: WindowSpec,
                   starts: tuple[int, int], tallies: Tallies, conventions: Conventions,
                   min_answers: int, named: int) -> dict[str, Any]:
    """The drivers of every metric of one group between the windows starting at
    ``starts`` (previous, current), from the tallies of its part dimension (rows keyed
    (window, start, part key))."""
    previous, current = starts
    parts = parts_by_group(spec, starts, tallies).get(key, {})
    metrics = {}
    for metric in METRICS:
        found = decompose(metric, parts, conventions, min_answers)
        metrics[metric] = {
            "score": _rounded(found.score), "previous_score": _rounded(found.previous_score),
            "change": _rounded(found.change), "summary": summary(found, named),
            "drivers": [{"part": d.part, "points": round(d.points, 2),
                         "rate": round(d.rate, 2), "mix": round(d.mix, 2),
                         "answers": d.answers, "previous_answers": d.previous_answers,
                         "score": _rounded(d.score), "previous_score": _rounded(d.previous_score),
                         "few": d.few} for d in found.drivers]}
    return {"dimension": dimension, "key": key, "by": by, "window": spec.name,
            "start": from_epoch(current).isoformat(),
            "previous_start": from_epoch(previous).isoformat(),
            "min_answers": min_answers, "metrics": metrics}


def drivers_of_groups(metric: Metric, spec: WindowSpec, starts: tuple[int, int],
                      tallies: Tallies, conventions: Conventions, min_answers: int
                      ) -> dict[str, Decomposition]:
    """The drivers of ``metric`` of every group whose parts are in ``tallies`` (rows of
    one part dimension keyed (window, start, part key)), between the windows starting at
    ``starts`` (previous, current): one pass over the rows, for the scores page."""
    return {group: decompose(metric, parts, conventions, min_answers)
            for group, parts in parts_by_group(spec, starts, tallies).items()}


def parts_by_group(spec: WindowSpec, starts: tuple[int, int], tallies: Tallies
                   ) -> dict[str, dict[str, tuple[Tally, Tally]]]:
    """group -> part -> (previous tally, current tally) of the rows of one part dimension
    (keyed (window, start, part key)) in ``spec``'s windows starting at ``starts``
    (previous, current); a part missing from a window has an empty tally there."""
    current = starts[1]
    groups: dict[str, dict[str, list[Tally]]] = {}
    for (window, start, raw), tally in tallies.items():
        if window != spec.name or start not in starts:
            continue
        group, part = parse_part_key(raw)
        pair = groups.setdefault(group, {}).setdefault(part, [Tally(), Tally()])
        pair[start == current] = tally
    return {group: {part: (pair[0], pair[1]) for part, pair in parts.items()}
            for group, parts in groups.items()}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
