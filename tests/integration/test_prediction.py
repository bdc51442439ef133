"""The prediction model on the real broker: trained by ``cxstream model train`` on a
simulated history with known traits, run by a worker that scores a silent customer as
their failures mount (API), measures itself against new answers (metrics, ``cxstream
model report``), and refuses a model of another feature version at start-up."""

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

from cxstream.cli.simulator.generator import SimConfig, simulate
from cxstream.streams.kafka.plain_clients import Record, produce
from cxstream.streams.kafka.topic_admin import ensure_topics
from cxstream.streams.settings import load_settings
from testkit.support import (
    Api,
    base_env,
    configure,
    feedback,
    interaction,
    profile,
    send,
    start,
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
    topics = {"customers": settings.topic_customers, "interactions":
              settings.topic_interactions, "feedback": settings.topic_feedback}
    records = [Record(topics[r.kind], r.key, r.value) for r in simulate(config, now).records()
               if r.at == 0.0]
    asyncio.run(ensure_topics(settings))
    return asyncio.run(produce(settings, records))


def _prediction(api: Api, customer: str, at: datetime) -> dict[str, Any]:
    """The customer's prediction once it is the one made at their event at ``at``."""
    def made() -> dict[str, Any] | None:
        found = api.get(f"/api/customers/{customer}")["prediction"]
        return found if found and datetime.fromisoformat(found["at"]) == at else None

    return dict(wait_until(made, timeout=60))


def test_a_trained_model_scores_customers_and_measures_itself_live(
        isolated: dict[str, str], tmp_path: Path) -> None:
    run = configure(isolated)
    settings = load_settings({}, **run)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    sent = _history(settings, now)
    env = base_env(**run)
    model = tmp_path / "model.json"
    trained = _cxstream(env, "model", "train", "--since", "30d", "--out", str(model),
                        "-o", "json")
    assert trained.returncode == 0, trained.stderr
    evaluation = json.loads(trained.stdout)["evaluation"]
    assert evaluation["auc"] > 0.7, evaluation  # the traits make answers predictable

    run = {**run, "model_file": str(model)}
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
