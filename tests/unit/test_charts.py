"""The console's trend charts (web.console.charts): a band and a line per run of days with
answers, a gap where a day has none, the alert's window outlined, and every point's
figures in its title."""

from __future__ import annotations

import re

from cxstream.streams.web.console.charts import trend_chart


def points(scores: list[float | None]) -> list[dict[str, object]]:
    return [{"start": f"2026-12-{day + 1:02d}T00:00:00+00:00", "score": score,
             "n": 0 if score is None else 40, "margin_of_error": None if score is None else 12.5}
            for day, score in enumerate(scores)]


def test_a_gap_breaks_the_line_and_each_run_has_its_band() -> None:
    svg = str(trend_chart(points([30.0, 20.0, None, -10.0, -20.0, -15.0]), "nps"))
    assert svg.count("<polyline") == 2 and svg.count("<polygon") == 2
    assert svg.count("<circle") == 5  # one per day with answers
    assert "2026-12-04: NPS -10 ± 12.5 (n=40)" in svg
    assert 'aria-label="NPS per day over 6 days: 30 on 2026-12-01, -15 on 2026-12-06"' in svg
    # the band spans score ± margin: +30 ± 12.5 on a scale of -100..100, 180 px high
    first = re.search(r'<polygon class="band" points="([^"]+)"', svg)
    assert first is not None
    ys = sorted(float(pair.split(",")[1]) for pair in first.group(1).split())
    scale = (180 - 22 - 6) / 200
    assert abs(ys[0] - (6 + scale * (100 - 42.5))) < 0.2  # the top: 30 + 12.5


def test_the_alerts_window_is_outlined_and_labelled() -> None:
    svg = str(trend_chart(points([30.0, 28.0, 5.0]), "nps",
                          marked="2026-12-03T00:00:00+00:00"))
    assert svg.count('class="marked"') == 1 and ">alert</text>" in svg
    assert "the alert's window: 2026-12-03</title>" in svg
    assert 'class="marked"' not in str(trend_chart(points([30.0]), "nps",
                                                   marked="2027-01-01T00:00:00+00:00"))


def test_a_compact_chart_marks_its_last_day_only() -> None:
    svg = str(trend_chart(points([4.1, 4.5, 4.4]), "ces", width=160, height=36,
                          compact=True))
    assert svg.count("<circle") == 1 and 'class="trend compact"' in svg
    assert "<text" not in svg  # no axes in a table cell
    empty = str(trend_chart(points([None, None]), "csat"))
    assert "no answers in these 2 days" in empty and "<polyline" not in empty
