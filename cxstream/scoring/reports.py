"""Group scores for the API: merge partition shares, pick windows, rank groups."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.tallies import Tally, scores
from cxstream.scoring.windows import WindowSpec, from_epoch, window_start

#: (window, start, group key) -> tally
Tallies = dict[tuple[str, int, str], Tally]


def merge_rows(rows: Iterable[tuple[str, int, str, dict[str, Any]]]) -> Tallies:
    """Add up (window, start, key, tally) rows from several partitions or workers."""
    merged: Tallies = {}
    for window, start, key, raw in rows:
        tally = Tally.model_validate(raw)
        slot = (window, int(start), key)
        merged[slot] = merged[slot].merge(tally) if slot in merged else tally
    return merged


def current_and_previous(spec: WindowSpec, at: datetime) -> tuple[int, int]:
    start = window_start(at.timestamp(), spec.seconds)
    return start, start - spec.seconds


def window_report(spec: WindowSpec, start: int, tally: Tally | None,
                  conventions: Conventions) -> dict[str, Any]:
    return {
        "window": spec.name,
        "start": from_epoch(start).isoformat(),
        "end": from_epoch(start + spec.seconds).isoformat(),
        **scores(tally or Tally(), conventions),
    }


def change_of(metric: str, current: dict[str, Any] | None,
              previous: dict[str, Any] | None, z: float = 1.96) -> dict[str, Any] | None:
    """A metric's change from the previous window, with its significance: the
    difference against its own margin, z times the standard error of a difference of
    two independent samples. A change within it is ``noise``: a difference that size
    comes from the samples alone more often than the confidence allows (1 time in 20 at
    95 %). None when either window has no answers.

    The shares (NPS, CSAT %) are estimated with one pseudo-answer of each kind added to
    each window (an Agresti-Caffo adjustment: Agresti & Caffo, The American
    Statistician 54(4), 2000), so three promoters out of three do not claim a zero
    margin; a CES mean of one answer has no margin and so no significance."""
    if current is None or previous is None:
        return None
    value = current["score"] - previous["score"]
    mine, theirs = (_standard_error(metric, window, z) for window in (current, previous))
    margin = None if mine is None or theirs is None else z * math.hypot(mine, theirs)
    significant = margin is not None and abs(value) > margin
    return {"value": round(value, 2), "margin": None if margin is None else round(margin, 2),
            "significant": significant,
            "direction": ("up" if value > 0 else "down") if significant else "noise"}


def _standard_error(metric: str, window: dict[str, Any], z: float) -> float | None:
    """The standard error of a window's score, in the score's units (adjusted shares)."""
    n = window["n"]
    if metric == "nps":
        # one promoter and one detractor added, and one passive when passives count
        size = n + (3 if n == window["promoters"] + window["detractors"]
                    + window["passives"] else 2)
        p, d = (window["promoters"] + 1) / size, (window["detractors"] + 1) / size
        return 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / size)
    if metric == "csat":
        share = (window["satisfied"] + 1) / (n + 2)
        return 100 * math.sqrt(share * (1 - share) / (n + 2))
    margin = window.get("margin_of_error")  # ces: the mean's own margin, at z
    return None if margin is None else margin / z


def group_report(dimension: str, key: str, specs: tuple[WindowSpec, ...], at: datetime,
                 tallies: Tallies, conventions: Conventions) -> dict[str, Any]:
    """Scores of one group in the current and the previous window of every size, and
    each metric's change between them with its significance."""
    windows = {}
    for spec in specs:
        current, previous = current_and_previous(spec, at)
        now = window_report(spec, current, tallies.get((spec.name, current, key)),
                            conventions)
        before = window_report(spec, previous, tallies.get((spec.name, previous, key)),
                               conventions)
        windows[spec.name] = {"current": now, "previous": before, "change": {
            metric: change_of(metric, now.get(metric), before.get(metric),
                              conventions.confidence_z)
            for metric in ("nps", "csat", "ces")}}
    return {"dimension": dimension, "key": key, "at": at.isoformat(), "windows": windows}


def ranking(dimension: str, spec: WindowSpec, start: int, metric: str, min_n: int,
            tallies: Tallies, conventions: Conventions, order: list[str] | None = None,
            why_hidden: str | None = None) -> dict[str, Any]:
    """Groups of one window ranked by ``metric`` (best first), or listed in ``order``
    (journey stages; keys not in it last); groups with fewer than ``min_n`` answers are
    left out, and counted in ``hidden`` with ``why_hidden`` (or the threshold) as the
    reason: a score of few answers is no fair rank. Each row has the window before it
    (``previous``, when ``tallies`` hold it) and the change with its significance."""
    rows = []
    hidden = 0
    before = start - spec.seconds
    for (window, slot_start, key), tally in tallies.items():
        if window != spec.name or slot_start != start:
            continue
        score = scores(tally, conventions)[metric]
        if score is None:
            continue
        if score["n"] >= min_n:
            earlier = tallies.get((spec.name, before, key))
            previous = scores(earlier, conventions)[metric] if earlier is not None else None
            rows.append({"key": key, **score, "previous": None if previous is None else {
                name: previous[name] for name in ("score", "n", "margin_of_error")},
                "change": change_of(metric, score, previous, conventions.confidence_z)})
        else:
            hidden += 1
    if order is None:
        rows.sort(key=lambda row: (-row["score"], row["key"]))
    else:
        place = {key: n for n, key in enumerate(order)}
        rows.sort(key=lambda row: (place.get(row["key"], len(place)), row["key"]))
    return {"dimension": dimension, "window": spec.name, "metric": metric,
            "start": from_epoch(start).isoformat(), "min_n": min_n, "groups": rows,
            "hidden": {"groups": hidden,
                       "reason": why_hidden or f"fewer than {min_n} {metric} answers"}}


def trend(tallies: Tallies, spec: WindowSpec, starts: list[int], key: str, metric: str,
          conventions: Conventions) -> list[dict[str, Any]]:
    """One group's ``metric`` in each window of ``starts`` (oldest first): the score, its
    answers and margin of error (None where the window has no answers)."""
    points = []
    for start in starts:
        tally = tallies.get((spec.name, start, key))
        found = None if tally is None else scores(tally, conventions)[metric]
        points.append({"start": from_epoch(start).isoformat(),
                       "score": None if found is None else found["score"],
                       "n": 0 if found is None else found["n"],
                       "margin_of_error": None if found is None else found["margin_of_error"]})
    return points
