"""The prediction model on the real broker: trained by ``cxstream model train`` on a
simulated history with known traits; ``cxstream rules backtest`` shows what the
predicted_at_risk rule would have raised; a worker with the model scores a silent customer
as their failures mount (API), raises the rule's alert with the prediction and its
reasons (the console's alert page, in Chromium), counts them in the priorities, measures
itself against new answers (metrics, ``GET /api/model``, ``cxstream model report``, the
console's scores page); a model of another feature version stops start-up."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxstream.cli.simulator.generator import SimConfig, history_inputs, simulate
from cxstream.cli.simulator.population import Kind
from cxstream.streams.kafka.plain_clients import Record, produce
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import (
    ARTIFACTS,
    CHROMIUM,
    Api,
    alerts_on_topic,
    base_env,
    clear_of_midnight,
    configure,
    feedback,
    interaction,
    profile,
    send,
    signed_in_page,
    start,
    to_bytes,
    wait_until,
)

pytestmark = pytest.mark.integration


def _cxstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxstream", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _history(settings: Any, now: datetime) -> int:
    """Three weeks of simulated traffic with hidden traits, up to ``now``."""
    config = SimConfig(customers=300, history_days=21, history_per_day=1_500, duration=1,
                       rate=0.001, incidents=False, malformed_share=0, daily_rhythm=False,
                       propensity=True, start=now)
    topics: dict[Kind, str] = {"customers": settings.topic_customers, "interactions":
                               settings.topic_interactions, "feedback": settings.topic_feedback}
    records = [Record(i.topic, i.key, i.value)
               for i in history_inputs(simulate(config, now), topics)]
    # and five customers who never answer, whose orders failed four times this morning
    for n in range(5):
        customer = f"quiet-{n}"
        records.append(Record(settings.topic_customers, customer.encode(), to_bytes(profile(
            customer_id=customer, segment="smb", value=900,
            updated_at=(now - timedelta(days=30)).isoformat()))))
        records += [Record(settings.topic_interactions, customer.encode(), to_bytes(
            interaction(event_id=f"quiet-{n}-{k}", customer_id=customer, outcome="failure",
                        channel="web", touchpoint="checkout",
                        occurred_at=(now - timedelta(hours=6 - k)).isoformat())))
            for k in range(4)]
    asyncio.run(ensure_topics(settings))
    return asyncio.run(produce(settings, records))


def _prediction(api: Api, customer: str, at: datetime) -> dict[str, Any]:
    """The customer's prediction once it is the one made at their event at ``at``."""
    def made() -> dict[str, Any] | None:
        found = api.get(f"/api/customers/{customer}")["prediction"]
        return found if found and datetime.fromisoformat(found["at"]) == at else None

    return dict(wait_until(made, timeout=60))


LEAD = "lena-prediction-token-0123456789"
RULES = {"predicted_at_risk": {"enabled": True, "probability_min": 0.5,
                               "high_value_only": False},
         "priorities": {"predicted_min": 0.5}}


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(make test installs it as root)")
def test_a_trained_model_scores_customers_and_measures_itself_live(
        isolated: dict[str, str], tmp_path: Path) -> None:
    rules, shipped, users = (tmp_path / "rules.yaml", tmp_path / "shipped.yaml",
                             tmp_path / "users.yaml")
    rules.write_text(yaml.safe_dump(RULES))
    shipped.write_text("{}\n")
    users.write_text(yaml.safe_dump({"users": [{"name": "lena", "token": LEAD,
                                                "role": "lead"}]}))
    run = configure(isolated, rules_file=str(rules), users_file=str(users))
    settings = load_settings({}, **run)
    now = clear_of_midnight(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30))
    sent = _history(settings, now)
    env = base_env(**run)
    model = tmp_path / "model.json"
    trained = _cxstream(env, "model", "train", "--since", "30d", "--out", str(model),
                        "-o", "json")
    assert trained.returncode == 0, trained.stderr
    evaluation = json.loads(trained.stdout)["evaluation"]
    assert evaluation["auc"] > 0.7, evaluation  # the traits make answers predictable
    run = {**run, "model_file": str(model)}
    backtest = _cxstream(base_env(**run), "rules", "backtest", "--rules", str(rules),
                         "--against", str(shipped), "--since", "30d", "-o", "json")
    assert backtest.returncode == 0, backtest.stderr
    would = json.loads(backtest.stdout)
    assert would["proposed"]["per_rule"].get("predicted_at_risk", 0) >= 5, would["proposed"]
    examples = {example["customer_id"] for group in would["proposed"]["groups"]
                if group["rule"] == "predicted_at_risk" for example in group["examples"]}
    assert examples and all(c.startswith("quiet-") for c in examples), examples
    assert "predicted_at_risk" not in would["current"]["per_rule"]

    worker = start(run, tmp_path, "worker")
    try:
        worker.wait_for("cxstream_events_folded_total", sent, timeout=240)
        api = Api(int(run["web_port"]))
        # a silent customer: never answers, their deliveries fail one after another
        send(settings, settings.topic_customers, [profile(
            customer_id="silent-1", segment="smb", value=2_000,
            updated_at=(now - timedelta(days=1)).isoformat())])
        rising = []
        for step, failures in enumerate((0, 3, 5)):  # 0, 3 and 8 failures in the week
            events = [interaction(event_id=f"ok-{step}", customer_id="silent-1",
                                  outcome="success", channel="web", touchpoint="delivery",
                                  occurred_at=(now + timedelta(minutes=step)).isoformat())]
            events += [interaction(event_id=f"fail-{step}-{n}", customer_id="silent-1",
                                   outcome="failure", channel="web", touchpoint="delivery",
                                   occurred_at=(now + timedelta(minutes=step, seconds=n + 1)
                                                ).isoformat()) for n in range(failures)]
            done = worker.wait_for("cxstream_events_folded_total", 0, kind="interaction")
            send(settings, settings.topic_interactions, events)
            worker.wait_for("cxstream_events_folded_total", done + len(events),
                            kind="interaction")
            latest = now + timedelta(minutes=step, seconds=failures)
            rising.append(_prediction(api, "silent-1", latest))
        live_before = worker.metrics()
        version = rising[0]["model_version"]
        labels = (("model_version", version),)
        week_before = live_before[("cxstream_prediction_live_week_answers", labels)]
        auc_before = live_before[("cxstream_prediction_live_auc", labels)]
        # new answers: the riskiest customer answers low, the others high
        answers = [feedback(event_id="new-low", customer_id="silent-1", score=1,
                            occurred_at=(now + timedelta(minutes=10)).isoformat())]
        answers += [feedback(event_id=f"new-{n}", customer_id=f"c-{n:05d}", score=10,
                             occurred_at=(now + timedelta(minutes=10)).isoformat())
                    for n in range(1, 40)]
        folded = worker.wait_for("cxstream_events_folded_total", 0, kind="feedback")
        send(settings, settings.topic_feedback, answers)
        worker.wait_for("cxstream_events_folded_total", folded + len(answers),
                        kind="feedback")
        live_after = worker.metrics()
        report = _cxstream(env, "model", "report", "--model", str(model), "--metrics-url",
                           f"http://127.0.0.1:{run['web_port']}/metrics", "-o", "json")
        served = api.get("/api/model")
        # the day window of silent-1's latest failures (after midnight, the wall clock's
        # current window is a new one)
        delivery = [row for row in api.get("/api/priorities", kind="touchpoint",
                                           at=latest.isoformat())["issues"]
                    if row["key"] == "delivery"]
        raised = [a for a in alerts_on_topic(settings) if a["rule"] == "predicted_at_risk"
                  and a["customer_id"] == "silent-1"]
        shown = _console(f"http://127.0.0.1:{run['web_port']}", raised[0]["alert_id"]) \
            if raised else None
    finally:
        assert worker.stop() == 0
    probabilities = [p["probability"] for p in rising]
    assert probabilities[0] < probabilities[1] <= probabilities[2], rising
    texts = [reason["text"] for reason in rising[2]["reasons"]]
    assert any("failed interactions in 7 days" in text for text in texts), texts
    assert live_after[("cxstream_prediction_live_week_answers", labels)] == \
        week_before + len(answers)
    assert live_after[("cxstream_prediction_live_auc", labels)] != auc_before
    assert live_after[("cxstream_prediction_training_auc", labels)] == evaluation["auc"]
    assert report.returncode == 0, report.stderr
    live = json.loads(report.stdout)["live"]
    assert live["week_answers"] == week_before + len(answers)
    assert live["auc"] == pytest.approx(live_after[("cxstream_prediction_live_auc", labels)])
    # GET /api/model: the same week, every worker's answers added up (one worker here)
    assert served["model_version"] == version and served["evaluation"]["auc"] == \
        evaluation["auc"]
    week = max(served["live"])
    assert served["live"][week]["answers"] == week_before + len(answers)
    assert served["live"][week]["auc"] == pytest.approx(live["auc"], abs=1e-4)
    # the rule raised one alert for silent-1 (from 3 failures: 0.5 or more), later
    # failures folded into it (each version of the alert is on the topic), with reasons
    assert len({alert["alert_id"] for alert in raised}) == 1, raised
    assert raised[0]["reason"]["probability"] >= 0.5 and raised[-1]["occurrences"] > 1
    assert raised[0]["context"]["prediction"]["reasons"], raised[0]["context"]
    # the priorities count silent-1 among the silent customers predicted at risk
    assert delivery and delivery[0]["predicted_at_risk"] >= 1, delivery
    # the console: the alert's page says it, the scores page shows the live weeks
    assert shown is not None
    assert shown["predicted"].startswith("predicted detractor: 0."), shown
    assert "failed interactions in 7 days" in shown["predicted"], shown
    assert shown["weeks"] >= 1 and shown["model"] == version


def _console(base: str, alert_id: str) -> dict[str, Any]:
    """What Chromium shows of the prediction on the alert's page and the scores page."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = signed_in_page(browser, base, LEAD)
            page.goto(f"{base}/console/alerts/{alert_id}")
            predicted = page.locator("dd.prediction").inner_text()
            page.screenshot(path=str(ARTIFACTS / "prediction-alert.png"), full_page=True)
            page.goto(f"{base}/console/scores")
            card = page.locator("section.model")
            weeks = card.locator("tr[data-week]").count()
            heading = card.locator("p.muted").first.inner_text()
            page.screenshot(path=str(ARTIFACTS / "prediction-scores.png"), full_page=True)
        finally:
            browser.close()
    return {"predicted": predicted, "weeks": weeks,
            "model": heading.split(",")[0].removeprefix("Model ").strip()}


def test_a_model_of_another_feature_version_stops_start_up(
        isolated: dict[str, str], tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_text(json.dumps({
        "format": 1, "feature_version": 0, "features": ["old"], "vocabulary": {},
        "weights": [1.0], "intercept": 0.0, "means": [0.0], "calibration_x": [0.0, 1.0],
        "calibration_y": [0.0, 1.0], "evaluation": {}, "trained": {}}))
    env = base_env(**configure(isolated, model_file=str(model)))
    began = time.monotonic()
    refused = _cxstream(env, "worker")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "CXSTREAM_MODEL_FILE" in refused.stderr
    assert "features are version 0" in refused.stderr and "retrain" in refused.stderr
    assert time.monotonic() - began < 60
