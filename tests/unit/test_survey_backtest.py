"""`cxstream surveys backtest` (cli.survey_backtest): the same replay as the rules
backtest, counting what a survey policy does with each request, by outcome, reason,
segment and trigger, and the difference between two policies."""

from __future__ import annotations

import asyncio

from cxstream.alerts.config import RulesConfig, load_rules
from cxstream.cli import backtest as bt
from cxstream.cli import survey_backtest as sb
from tests.unit.test_backtest import SETTINGS, Inputs, T


def delivered(inputs: Inputs, event_id: str, customer: str, at: float) -> None:
    inputs.add(SETTINGS.topic_interactions, {
        "event_id": event_id, "customer_id": customer, "occurred_at": bt._iso(at),
        "channel": "delivery", "touchpoint": "delivery", "outcome": "success"}, at)


def history() -> Inputs:
    inputs = Inputs()
    inputs.profile("ann", 100, T - 60)
    inputs.profile("big", 9000, T - 60, segment="enterprise")
    inputs.profile("wes", 100, T - 60)
    inputs.failure("f-wes", "wes", T - 30)  # a failed delivery, then a good one:
    delivered(inputs, "d-wes", "wes", T - 20)  # its survey waits the failure out
    for day in (0, 1, 5, 20):  # deliveries on four days (stored in time order)
        for customer in ("ann", "big"):
            delivered(inputs, f"d{day}-{customer}", customer, T + day * 86_400)
    inputs.answer("late", "ann", 9, T + 21 * 86_400)  # the clock moves on to the end
    return inputs


def replayed(config: RulesConfig) -> sb.SurveyReport:
    return asyncio.run(sb.replay_surveys(SETTINGS, config, "rules",
                                         bt.merged(history().records)))


def test_each_request_is_counted_once_by_what_became_of_it() -> None:
    report = replayed(load_rules())
    rows = report.rows()
    totals = report.totals()
    assert totals["asked"] == sum(rows.values()) == len(report.requests)
    # the failed delivery's customer: asked after the hour of grace, and sent then (NPS;
    # that sending keeps the delivery's CSAT out: any survey within 3 days)
    assert rows[("sent after waiting", "recent_failure", "smb", "relationship-nps")] == 1
    assert rows[("suppressed", "recently_surveyed_any", "smb", "delivery-csat")] == 1
    # a second delivery a day later: CSAT asked again within 14 days is suppressed
    assert rows[("suppressed", "recently_surveyed", "smb", "delivery-csat")] >= 1
    assert sum(count for (outcome, _, segment, _), count in rows.items()
               if outcome == "sent" and segment == "enterprise") >= 1


def test_two_policies_compare_by_outcome_and_reason() -> None:
    shipped = load_rules()
    quiet = RulesConfig.model_validate({"surveys": {
        **shipped.surveys.model_dump(), "fatigue": {
            **shipped.surveys.fatigue.model_dump(),
            "segments": {"enterprise": {"enabled": False}}}}})
    current, proposed = replayed(shipped), replayed(quiet)
    enterprise = {row: count for row, count in proposed.rows().items()
                  if row[2] == "enterprise"}
    assert enterprise and {row[:2] for row in enterprise} == {
        ("suppressed", "segment_opted_out")}
    smb = {row: count for row, count in current.rows().items() if row[2] == "smb"}
    assert smb == {row: count for row, count in proposed.rows().items() if row[2] == "smb"}
    compared = {(row["outcome"], row["reason"]): (row["current"], row["proposed"])
                for row in sb.comparison(current, proposed)}
    assert compared[("suppressed", "segment_opted_out")][0] == 0
    assert compared[("suppressed", "segment_opted_out")][1] == sum(enterprise.values())
    assert sb.report_json(proposed)["totals"]["asked"] == proposed.totals()["asked"]
