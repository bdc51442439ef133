"""Priorities on the real broker: a scripted day where four high-value customers' failed
deliveries (none of them answers a survey; one before their profile is known) outrank
ten low-value customers' billing complaints by revenue at stake, with a duplicate, a
late event and yesterday's window for the trend; the same ranking through
`cxstream priorities`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.cli.scrape import total
from cxstream.scoring.windows import window_start
from cxstream.streams.settings import load_settings
from testkit.support import Api, configure, feedback, interaction, profile, send, start

pytestmark = pytest.mark.integration
DAY = 86_400


def _window_now() -> tuple[datetime, int]:
    """Now and its day window's start, at least three minutes before the window ends
    (the test waits into the next window otherwise, so no event changes window)."""
    now = time.time()
    left = window_start(now, DAY) + DAY - now
    if left < 180:
        time.sleep(left + 1)
        now = time.time()
    return datetime.fromtimestamp(int(now), UTC), int(window_start(now, DAY))


def test_a_few_silent_high_value_customers_outrank_many_low_value_ones(
        isolated: dict[str, str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"priorities": {"window_hours": 24, "min_customers": 3},
                                     "surveys": {"enabled": False}}))
    run = configure(isolated, rules_file=str(rules), high_value_threshold="1000")
    settings = load_settings({}, **run)
    now, start_s = _window_now()
    start_at = datetime.fromtimestamp(start_s, UTC)
    span = (now - start_at).total_seconds()

    def today(fraction: float) -> str:  # within today's window, before now
        return (start_at + timedelta(seconds=span * fraction)).isoformat()

    def yesterday(hours: float) -> str:
        return (start_at - timedelta(hours=hours)).isoformat()

    profiles = ([profile(customer_id=f"h{n}", segment="enterprise", value=8000.0,
                         updated_at=yesterday(30)) for n in (1, 2, 3)]
                + [profile(customer_id=f"l{n}", segment="consumer", value=30.0,
                           updated_at=yesterday(30)) for n in range(1, 11)])

    def failed_delivery(event_id: str, customer: str, at: str) -> dict[str, Any]:
        return interaction(event_id=event_id, customer_id=customer, channel="delivery",
                           touchpoint="delivery", outcome="failure", occurred_at=at)

    def billing_answer(event_id: str, customer: str, at: str) -> dict[str, Any]:
        return feedback(event_id=event_id, customer_id=customer, survey="nps", score=2,
                        channel="web", touchpoint="billing", occurred_at=at)

    interactions = [
        failed_delivery("y-h1", "h1", yesterday(5)),  # yesterday: the trend's baseline
        failed_delivery("d-h1", "h1", today(0.3)),
        failed_delivery("d-h1-again", "h1", today(0.5)),  # the same customer: once
        failed_delivery("d-h2", "h2", today(0.6)),
        failed_delivery("d-h2", "h2", today(0.6)),  # the same event twice
        interaction(event_id="b-l1", customer_id="l1", channel="phone",
                    touchpoint="billing", outcome="escalated", occurred_at=today(0.1)),
        failed_delivery("d-h3", "h3", today(0.2)),  # late: older than the ones before
        interaction(event_id="ok-l2", customer_id="l2", channel="delivery",
                    touchpoint="delivery", outcome="success", occurred_at=today(0.4)),
        failed_delivery("d-h4", "h4", today(0.7)),  # before h4's profile is known
    ]
    late_profile = profile(customer_id="h4", segment="enterprise", value=8000.0,
                           updated_at=yesterday(30))
    answers = ([billing_answer(f"y-l{n}", f"l{n}", yesterday(3)) for n in range(1, 5)]
               + [billing_answer(f"f-l{n}", f"l{n}", today(0.2 + n / 20))
                  for n in range(1, 11)])
    worker = start(run, tmp_path, "worker")
    try:
        send(settings, settings.topic_customers, profiles)
        worker.wait_for("cxstream_events_folded_total", len(profiles), kind="customer")
        send(settings, settings.topic_interactions, interactions)
        # the interactions first: l1's escalated call is counted silent, then answered
        worker.wait_for("cxstream_events_folded_total", len(interactions) - 1,
                        kind="interaction", outcome="applied")
        worker.wait_for("cxstream_events_folded_total", 1, kind="interaction",
                        outcome="duplicate")
        send(settings, settings.topic_customers, [late_profile])  # revalues h4's issue
        worker.wait_for("cxstream_events_folded_total", len(profiles) + 1, kind="customer")
        send(settings, settings.topic_feedback, answers)
        worker.wait_for("cxstream_events_folded_total", len(answers), kind="feedback",
                        outcome="applied")
        # every signal looked at: 7 failed or escalated interactions and 14 answers, and
        # h4's issue revalued by their profile
        worker.wait_for("cxstream_priority_signals_total", 22)
        samples = worker.metrics()
        results = {result: total(samples, "cxstream_priority_signals_total", result=result)
                   for result in ("counted", "again", "revalued")}
        api = Api(int(run["web_port"]))
        at = now.isoformat()
        by_value = api.get("/api/priorities", at=at)
        by_customers = api.get("/api/priorities", at=at, rank_by="customers")
        by_area = api.get("/api/priorities", at=at, by="area")
        env = {f"CXSTREAM_{name.upper()}": value for name, value in run.items()}
        printed = CliRunner().invoke(app, ["priorities", "--at", at, "-o", "json"], env=env)
        table = CliRunner().invoke(app, ["priorities", "--at", at],
                                   env={**env, "COLUMNS": "200"})
    finally:
        assert worker.stop() == 0
    # delivery: 4 customers today (h1 twice: again; h4 before their profile, then
    # revalued), 1 yesterday; billing: l1 silent then answered (both move the count),
    # 9 more today, 4 yesterday
    assert results == {"counted": 20, "again": 1, "revalued": 1}
    assert by_value["window"]["start"] == start_at.isoformat()
    rows = [(r["rank"], r["issue"], r["customers"], r["silent"], r["answered"], r["value"],
             r["top_customers"], r["top_value_share"], r["previous"], r["trend"], r["few"])
            for r in by_value["issues"]]
    assert rows == [
        (1, "touchpoint:delivery", 4, 4, 0, 32000.0, 4, 1.0,
         {"customers": 1, "value": 8000.0}, "rising", False),
        (2, "touchpoint:billing", 10, 0, 10, 300.0, 0, 0.0,
         {"customers": 4, "value": 120.0}, "rising", False)]
    assert [r["issue"] for r in by_customers["issues"]] == ["touchpoint:billing",
                                                            "touchpoint:delivery"]
    assert [(r["key"], r["customers"]) for r in by_area["issues"]] == [("delivery", 4),
                                                                       ("trust", 10)]
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["issues"] == by_value["issues"]
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if "│" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["touchpoint:delivery",
                                                              "touchpoint:billing"]
