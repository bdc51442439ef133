"""The predicted_at_risk customer rule and the prediction in an alert: the rule fires for
silent customers predicted at or above its threshold, is off in the shipped rules file,
resolves when the customer answers, and a worker's core with a model puts the prediction
in the alert's context and its Slack message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cxstream.alerts.config import load_rules
from cxstream.alerts.customer_rules import (
    PredictedAtRiskRule,
    RuleFacts,
    predicted_at_risk_trigger,
    predicted_recovered,
)
from cxstream.alerts.reactions import AlertOut
from cxstream.alerts.slack import alert_message
from cxstream.scoring.customer import CustomerState, ScoreRecord
from cxstream.streams.settings import Settings
from testkit.support import (
    RULES_T0,
    fb,
    flat_model_file,
    interaction,
    ix,
    outputs_of_core,
    to_bytes,
)

PREDICTION = {"probability": 0.62, "model_version": "abc123def456", "at": RULES_T0.isoformat(),
              "reasons": [{"feature": "failures_7d", "value": 3.0,
                           "text": "3 failed interactions in 7 days"}]}


def facts(probability: float = 0.62, high_value: bool | None = True,
          answered_days_ago: float | None = None) -> RuleFacts:
    last_scores = {}
    if answered_days_ago is not None:
        last_scores["nps"] = ScoreRecord(
            event_id="f-0", survey="nps", score=9, channel="email", touchpoint="support",
            at=RULES_T0 - timedelta(days=answered_days_ago))
    customer = CustomerState(customer_id="c-1", last_scores=last_scores,
                             prediction={**PREDICTION, "probability": probability})
    return RuleFacts(ix(), None, {"high_value": high_value}, [], customer)


def test_it_fires_for_a_silent_customer_at_the_threshold_only() -> None:
    rule = PredictedAtRiskRule(enabled=True, probability_min=0.6)
    fired = predicted_at_risk_trigger(facts(), rule)
    assert fired is not None and fired.rule == "predicted_at_risk"
    assert fired.summary == ("c-1 is predicted to answer low (0.62): "
                             "3 failed interactions in 7 days")
    assert fired.reason["probability"] == 0.62 and fired.reason["threshold"] == 0.6
    assert predicted_at_risk_trigger(facts(probability=0.6), rule) is not None
    assert predicted_at_risk_trigger(facts(probability=0.59), rule) is None
    assert predicted_at_risk_trigger(facts(answered_days_ago=29), rule) is None  # answers
    assert predicted_at_risk_trigger(facts(answered_days_ago=31), rule) is not None
    assert predicted_at_risk_trigger(facts(high_value=False), rule) is None
    assert predicted_at_risk_trigger(facts(high_value=None), rule) is None
    everyone = PredictedAtRiskRule(enabled=True, probability_min=0.6, high_value_only=False)
    assert predicted_at_risk_trigger(facts(high_value=False), everyone) is not None
    assert predicted_at_risk_trigger(facts(), PredictedAtRiskRule()) is None  # off
    no_model = RuleFacts(ix(), None, {"high_value": True}, [],
                         CustomerState(customer_id="c-1"))
    assert predicted_at_risk_trigger(no_model, rule) is None


def test_it_is_off_in_the_shipped_rules_and_resolves_when_the_customer_answers() -> None:
    assert load_rules().rule_settings("predicted_at_risk").enabled is False
    rule = PredictedAtRiskRule(enabled=True)
    assert predicted_recovered(fb(score=9, event_id="f-9"), {}, rule) == \
        "the customer answered NPS 9 (f-9)"
    assert predicted_recovered(ix(), {}, rule) is None


class NoDeadLetters:
    async def write(self, topic: str, partition: int, rejected: Any) -> list[int]:
        raise AssertionError(f"dead-lettered: {rejected}")


@pytest.mark.parametrize("with_model", [True, False])
def test_a_worker_core_with_a_model_raises_it_with_the_prediction_in_the_context(
        tmp_path: Path, with_model: bool) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("predicted_at_risk:\n  enabled: true\n  probability_min: 0.7\n"
                     "  high_value_only: false\n")
    extra = {"model_file": flat_model_file(tmp_path / "model.json", 0.8)} if with_model \
        else {}
    settings = Settings(bootstrap_servers="localhost:1", rules_file=rules, **extra)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()  # the core's clock: now
    record = SimpleNamespace(kind="interactions", key=b"c-9", value=to_bytes(interaction(
        customer_id="c-9", event_id="i-9", occurred_at=now, outcome="failure")))
    outputs = outputs_of_core(settings, [record])
    raised = [output.alert for output in outputs if isinstance(output, AlertOut)]
    assert [alert.rule for alert in raised] == (["predicted_at_risk"] if with_model else [])
    if with_model:
        context = raised[0].context["prediction"]
        assert context["probability"] == 0.8 and context["model_version"]
        message = alert_message(raised[0], None, {}).model_dump_json()
        assert "*Predicted detractor* 0.80" in message
