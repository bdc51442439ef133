"""The console's trend charts (web.console.charts): a band and a line per run of days with
answers, a gap where a day has none, the alert's window outlined, and every point's
figures in its title."""

from __future__ import annotations

import math
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


def test_the_drivers_bars_are_labelled_and_point_the_way_they_moved() -> None:
    from cxstream.scoring.drivers import Driver
    from cxstream.streams.web.console.charts import driver_bars

    drivers = [Driver("delivery", -15.2, -14.0, -1.2, 40, 42, 10.0, 45.0, False),
               Driver("billing", -5.0, -5.0, 0.0, 30, 30, 20.0, 37.0, False),
               Driver("<app>", 2.0, 2.0, 0.0, 3, 4, 50.0, 0.0, True)]
    svg = str(driver_bars(drivers, width=260))
    assert 'aria-label="delivery -15.2; billing -5.0; &lt;app&gt; +2.0"' in svg
    assert ">delivery -15.2<" in svg and ">&lt;app&gt; +2.0 (too few)<" in svg
    bars = re.findall(r'<rect class="(down|up)" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert [b[0] for b in bars] == ["down", "down", "up"]
    (_, x1, w1), (_, x2, w2), (_, x3, _) = bars
    middle = float(x1) + float(w1)
    assert math.isclose(float(x2) + float(w2), middle, abs_tol=0.1)  # losses end at the axis
    assert math.isclose(float(x3), middle, abs_tol=0.1)  # gains start there
    assert math.isclose(float(w2) / float(w1), 5.0 / 15.2, rel_tol=0.01)
    assert str(driver_bars([])).count("<rect") == 0
