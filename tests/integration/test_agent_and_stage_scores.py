"""Scores per agent and per journey stage on the real broker: exact scores with n and
margin, agents of few answers left out of the ranking with the reason, stages in journey
order, and the batch recomputation agreeing with the stream on every tally."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.streams.settings import load_settings
from testkit.support import TOKEN, Api, configure, feedback, send, start

pytestmark = pytest.mark.integration


def test_scores_per_agent_and_per_stage_are_exact_and_agree_with_a_recomputation(
        isolated: dict[str, str], tmp_path: Path) -> None:
    run = configure(isolated, agent_min_answers="10")
    settings = load_settings({}, **run)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    answers = []
    # agent-a: 12 CSAT answers, 9 of them satisfied (4 or 5); agent-b: 3, all satisfied
    for n, score in enumerate([5, 5, 4, 4, 5, 4, 5, 4, 4, 2, 1, 3]):
        answers.append(feedback(event_id=f"a{n}", customer_id=f"c{n}", survey="csat",
                                score=score, touchpoint="support", channel="phone",
                                handled_by="agent-a", occurred_at=at.isoformat()))
    for n in range(3):
        answers.append(feedback(event_id=f"b{n}", customer_id=f"d{n}", survey="csat",
                                score=5, touchpoint="returns", channel="chat",
                                handled_by="agent-b", occurred_at=at.isoformat()))
    # stages: renewal, checkout (purchase), onboarding (contact), kiosk (other)
    for n, touchpoint in enumerate(["renewal", "checkout", "onboarding", "kiosk"]):
        answers.append(feedback(event_id=f"s{n}", customer_id=f"e{n}", survey="csat",
                                score=3, touchpoint=touchpoint, occurred_at=at.isoformat()))
    answers.append(answers[0])  # a resend: counted once
    worker = start(run, tmp_path, "worker")
    try:
        send(settings, settings.topic_feedback, answers)
        worker.wait_for("cxstream_events_folded_total", len(answers), kind="feedback")
        api = Api(int(run["web_port"]))
        query = {"window": "day", "metric": "csat", "at": at.isoformat()}
        agent_a = api.get("/api/scores/agent/agent-a", at=at.isoformat())
        ranked = api.get("/api/scores/agent", **query)
        asked_for_less = api.get("/api/scores/agent", **query, min_n="1")
        stages = api.get("/api/scores/stage", **query)
        drift = differences(batch_tallies(settings),
                            stream_tallies(f"http://127.0.0.1:{run['web_port']}", TOKEN))
    finally:
        assert worker.stop() == 0
    csat = agent_a["windows"]["day"]["current"]["csat"]
    assert (csat["n"], csat["score"]) == (12, 75.0)
    share = 9 / 12  # the margin: 1.96 standard errors of the share
    assert math.isclose(csat["margin_of_error"], round(100 * 1.96 * math.sqrt(
        share * (1 - share) / 12), 2), abs_tol=0.01)
    assert [(g["key"], g["n"], g["score"]) for g in ranked["groups"]] == [("agent-a", 12, 75.0)]
    assert ranked["hidden"]["groups"] == 1
    assert "10 csat answers" in ranked["hidden"]["reason"]
    assert asked_for_less["min_n"] == 10 and asked_for_less["hidden"]["groups"] == 1
    assert [g["key"] for g in stages["groups"]] == ["contact", "purchase", "support",
                                                     "renewal", "other"]
    assert [g["n"] for g in stages["groups"]] == [1, 1, 15, 1, 1]
    assert drift == []
