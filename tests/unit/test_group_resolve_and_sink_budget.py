"""Group alerts resolving themselves (an issue below its threshold for a whole window, a
segment's score back above its baseline minus the margin); the webhook sink is tested in
test_webhook_lanes.py."""

from __future__ import annotations

from datetime import UTC, datetime

from cxstream.alerts.config import load_rules
from cxstream.alerts.group_rules import IssueWindow, issue_recovered, segment_recovered
from cxstream.alerts.rule_settings import RecurringIssueRule
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.tallies import Tally

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = load_rules()


def test_an_issue_alert_resolves_after_a_whole_quiet_window() -> None:
    rule = RecurringIssueRule(min_customers=5, window_minutes=60)
    start = 0
    assert not issue_recovered(start, None, rule, 2 * 3600 - 1)  # next window not over
    assert issue_recovered(start, None, rule, 2 * 3600)  # nobody in the next window
    assert issue_recovered(start, IssueWindow(count=4), rule, 2 * 3600)
    assert not issue_recovered(start, IssueWindow(count=5), rule, 3 * 3600)  # still on


def tally(promoters: int, detractors: int, passives: int = 0) -> Tally:
    return Tally.model_validate({"promoters": promoters, "detractors": detractors,
                                 "passives": passives})


def test_a_segment_recovers_once_its_score_is_back_above_baseline_minus_margin() -> None:
    conventions = Conventions()
    baseline = tally(60, 20, 20)  # NPS 40
    assert segment_recovered("nps", tally(20, 20, 10), baseline, CONFIG,
                             conventions) is None  # NPS 20 (n=50), still down
    figures = segment_recovered("nps", tally(18, 6, 6), baseline, CONFIG, conventions)
    assert figures is not None and figures["current"] == 40 and figures["floor"] == 30
    assert segment_recovered("nps", tally(9, 3, 3), baseline, CONFIG,
                             conventions) is None  # n=15: too few answers to say
