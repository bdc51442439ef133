"""Group scores for the API: merge partition shares, pick windows, rank groups."""

from __future__ import annotations

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


def group_report(dimension: str, key: str, specs: tuple[WindowSpec, ...], at: datetime,
                 tallies: Tallies, conventions: Conventions) -> dict[str, Any]:
    """Scores of one group in the current and the previous window of every size."""
    windows = {}
    for spec in specs:
        current, previous = current_and_previous(spec, at)
        windows[spec.name] = {
            "current": window_report(spec, current, tallies.get((spec.name, current, key)),
                                     conventions),
            "previous": window_report(spec, previous, tallies.get((spec.name, previous, key)),
                                      conventions),
        }
    return {"dimension": dimension, "key": key, "at": at.isoformat(), "windows": windows}


def ranking(dimension: str, spec: WindowSpec, start: int, metric: str, min_n: int,
            tallies: Tallies, conventions: Conventions, order: list[str] | None = None,
            why_hidden: str | None = None) -> dict[str, Any]:
    """Groups of one window ranked by ``metric`` (best first), or listed in ``order``
    (journey stages; keys not in it last); groups with fewer than ``min_n`` answers are
    left out, and counted in ``hidden`` with ``why_hidden`` (or the threshold) as the
    reason: a score of few answers is no fair rank."""
    rows = []
    hidden = 0
    for (window, slot_start, key), tally in tallies.items():
        if window != spec.name or slot_start != start:
            continue
        score = scores(tally, conventions)[metric]
        if score is None:
            continue
        if score["n"] >= min_n:
            rows.append({"key": key, **score})
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
