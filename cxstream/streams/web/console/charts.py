"""A group's score per day as server-rendered SVG: the line, its margin of error as a
band, and an alert's window marked. No script and no colour needed to read it: the band
is a lighter area around a solid line, the marked window is outlined and labelled, and
every point has its figures in a title (a tooltip, and read by screen readers).

Written here rather than with a charting library (pygal, matplotlib): what is drawn is
one polygon, one polyline and a few labels per chart, and a library would add a
dependency, its styles and, for pygal, a tooltip script to switch off, for that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

#: the scale of each metric (fixed: charts of two groups compare at a glance)
RANGES = {"nps": (-100.0, 100.0), "csat": (0.0, 100.0), "ces": (1.0, 7.0)}


def trend_chart(points: list[dict[str, Any]], metric: str, *, width: int = 640,
                height: int = 180, marked: str | None = None, compact: bool = False
                ) -> Markup:
    """The SVG of ``points`` (api trend: start, score, n, margin_of_error, oldest first);
    ``marked``: the start (ISO) of a window to outline (an alert's)."""
    low, high = RANGES[metric]
    pad_left, pad_bottom = (2, 2) if compact else (40, 22)
    inner_w, inner_h = width - pad_left - 4, height - pad_bottom - 6
    step = inner_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return pad_left + i * step

    def y(value: float) -> float:
        clipped = min(max(value, low), high)
        return 6 + inner_h * (high - clipped) / (high - low)

    parts: list[str] = []
    if not compact:
        parts += _axes(low, high, y, pad_left, width, metric)
    if marked is not None:
        parts += _marked(points, marked, x, step, height, pad_bottom, compact)
    for run in _runs(points):
        upper = [(x(i), y(p["score"] + (p["margin_of_error"] or 0))) for i, p in run]
        lower = [(x(i), y(p["score"] - (p["margin_of_error"] or 0))) for i, p in run]
        parts.append(f'<polygon class="band" points="{_path(upper + lower[::-1])}"/>')
        parts.append(f'<polyline class="line" points="'
                     f'{_path([(x(i), y(p["score"])) for i, p in run])}"/>')
        for i, p in run:
            if compact and i != len(points) - 1:
                continue
            label = (f"{p['start'][:10]}: {metric.upper()} {p['score']:g}"
                     + (f" ± {p['margin_of_error']:g}" if p["margin_of_error"] is not None
                        else "") + f" (n={p['n']})")
            parts.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(p["score"]):.1f}" '
                         f'r="{2 if compact else 3}"><title>{escape(label)}</title></circle>')
    if not compact and points:
        parts.append(f'<text class="tick" x="{pad_left}" y="{height - 4}">'
                     f'{escape(_day(points[0]["start"]))}</text>')
        parts.append(f'<text class="tick" x="{width - 4}" y="{height - 4}" '
                     f'text-anchor="end">{escape(_day(points[-1]["start"]))}</text>')
    summary = _summary(points, metric)
    return Markup(f'<svg class="trend{" compact" if compact else ""}" width="{width}" '
                  f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
                  f'aria-label="{escape(summary)}"><title>{escape(summary)}</title>'
                  + "".join(parts) + "</svg>")


def _runs(points: list[dict[str, Any]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """The points with a score, in runs of consecutive days (a gap breaks the line)."""
    runs: list[list[tuple[int, dict[str, Any]]]] = [[]]
    for i, point in enumerate(points):
        if point["score"] is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((i, point))
    return [run for run in runs if run]


def _axes(low: float, high: float, y: Any, left: int, width: int, metric: str) -> list[str]:
    ticks = [low, (low + high) / 2, high]
    lines = []
    for value in ticks:
        lines.append(f'<line class="grid" x1="{left}" x2="{width - 4}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/>')
        lines.append(f'<text class="tick" x="{left - 4}" y="{y(value) + 4:.1f}" '
                     f'text-anchor="end">{value:g}</text>')
    return lines


def _marked(points: list[dict[str, Any]], start: str, x: Any, step: float, height: int,
            pad_bottom: int, compact: bool) -> list[str]:
    day = start[:10]
    index = next((i for i, p in enumerate(points) if p["start"][:10] == day), None)
    if index is None:
        return []
    left = max(x(index) - step / 2, x(0))
    box = (f'<rect class="marked" x="{left:.1f}" y="2" width="{max(step, 6):.1f}" '
           f'height="{height - pad_bottom - 2}"><title>the alert\'s window: '
           f'{escape(day)}</title></rect>')
    near_end = left + max(step, 6) + 34 > x(len(points) - 1) + step / 2
    label = "" if compact else (
        f'<text class="marked-label" x="{left - 3:.1f}" y="14" text-anchor="end">alert</text>'
        if near_end else
        f'<text class="marked-label" x="{left + max(step, 6) + 3:.1f}" y="14">alert</text>')
    return [box, label]


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


def _day(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d %b")


def _summary(points: list[dict[str, Any]], metric: str) -> str:
    known = [p for p in points if p["score"] is not None]
    if not known:
        return f"{metric.upper()} per day: no answers in these {len(points)} days"
    return (f"{metric.upper()} per day over {len(points)} days: {known[0]['score']:g} on "
            f"{known[0]['start'][:10]}, {known[-1]['score']:g} on {known[-1]['start'][:10]}")


def driver_bars(drivers: list[Any], *, width: int = 260, row: int = 16) -> Markup:
    """The largest drivers of a change (scoring.drivers.Driver, at most a few) as bars
    from a middle axis, points lost to the left, each labelled with its part and points
    (readable without colour); a part with too few answers is labelled so."""
    widest = max((abs(driver.points) for driver in drivers), default=0.0) or 1.0
    labels = width * 0.5  # the parts' names and points, right-aligned before the bars
    half = (width - labels - 4) / 2
    middle = labels + 2 + half
    parts = [f'<line class="axis" x1="{middle:.1f}" y1="0" x2="{middle:.1f}" '
             f'y2="{row * len(drivers)}"/>']
    for i, driver in enumerate(drivers):
        length = abs(driver.points) / widest * half
        left = middle - length if driver.points < 0 else middle
        label = f"{driver.part} {driver.points:+.1f}" + (" (too few)" if driver.few else "")
        parts.append(f'<rect class="{"down" if driver.points < 0 else "up"}" '
                     f'x="{left:.1f}" y="{i * row + 3}" width="{length:.1f}" '
                     f'height="{row - 6}"><title>{escape(label)}</title></rect>')
        parts.append(f'<text class="tick" x="{labels - 2:.1f}" y="{i * row + row - 4}" '
                     f'text-anchor="end">{escape(_short(label, 22))}</text>')
    said = "; ".join(f"{driver.part} {driver.points:+.1f}" for driver in drivers)
    height = row * len(drivers)
    return Markup(f'<svg class="bar drivers" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(said)}">'
                  + "".join(parts) + "</svg>")


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"
