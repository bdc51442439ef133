"""Survey requests on the real broker: a scripted morning of deliveries, support calls and
answers for customers in two segments, with a duplicate and a late event. The exact
requests reach cx.survey-requests: none for the customer with an open alert, none for the
one who answered yesterday, and one deferred after a failure, sent once it cleared."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cxstream.cli.scrape import total
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import load_settings
from testkit.support import Api, configure, feedback, interaction, profile, send, start

pytestmark = pytest.mark.integration

RULES = {"surveys": {
    "triggers": [
        {"name": "delivery-csat", "survey": "csat", "touchpoints": ["delivery"],
         "outcomes": ["success"], "valid_hours": 72},
        {"name": "support-ces", "survey": "ces", "touchpoints": ["support"],
         "outcomes": ["success", "escalated"], "valid_hours": 48}],
    "fatigue": {"per_survey_days": {"csat": 14, "ces": 14}, "any_survey_days": 0,
                "open_alert": "skip", "after_failure": {"minutes": 1, "action": "later"},
                "segments": {"enterprise": {"any_survey_days": 30}}},
    "region_languages": {"lt": "lt"},
    "check_every_seconds": 1}}


def test_a_scripted_morning_sends_the_exact_survey_requests(
        isolated: dict[str, str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    run = configure(isolated, rules_file=str(rules))
    settings = load_settings({}, **run)
    now = datetime.now(UTC).replace(microsecond=0)

    def at(**delta: float) -> str:
        return (now - timedelta(**delta)).isoformat()

    segments = {"a1": "smb", "a2": "smb", "a3": "smb", "a4": "enterprise",
                "a5": "smb", "a6": "enterprise", "a7": "smb"}
    profiles = [profile(customer_id=c, segment=s, region="lt" if c == "a1" else None,
                        updated_at=at(days=1)) for c, s in segments.items()]
    answers = [
        feedback(event_id="f-a2", customer_id="a2", survey="csat", score=4,
                 occurred_at=at(hours=20), language="pl"),  # answered yesterday
        feedback(event_id="f-a3", customer_id="a3", survey="nps", score=2,
                 occurred_at=at(minutes=30)),  # a detractor: an alert opens
    ]

    def delivered(event_id: str, customer: str, **ago: float) -> dict[str, Any]:
        return interaction(event_id=event_id, customer_id=customer, channel="delivery",
                           touchpoint="delivery", outcome="success", occurred_at=at(**ago))

    def supported(event_id: str, customer: str, outcome: str, **ago: float) -> dict[str, Any]:
        return interaction(event_id=event_id, customer_id=customer, channel="phone",
                           touchpoint="support", outcome=outcome, occurred_at=at(**ago))

    interactions = [
        delivered("d-a1", "a1", minutes=10),
        delivered("d-a1", "a1", minutes=10),  # the same event again
        delivered("d-a2", "a2", minutes=5),
        supported("s-a3", "a3", "success", minutes=5),
        supported("s-a4-failed", "a4", "failure", seconds=45),
        supported("s-a4", "a4", "success", seconds=40),  # 40 s after a failure: later
        delivered("d-a5", "a5", minutes=2),
        delivered("d-a5-late", "a5", hours=30),  # older, read later: within 14 days
        delivered("d-a6", "a6", minutes=3),
        supported("s-a6", "a6", "escalated", minutes=1),  # enterprise: 30 days apart
        delivered("d-a7", "a7", minutes=3),
        supported("s-a7", "a7", "escalated", minutes=1),  # smb: no any-survey window
    ]
    worker = start(run, tmp_path, "worker")
    try:
        send(settings, settings.topic_customers, profiles)
        worker.wait_for("cxstream_events_folded_total", len(profiles), kind="customer")
        send(settings, settings.topic_feedback, answers)
        worker.wait_for("cxstream_events_folded_total", len(answers), kind="feedback")
        send(settings, settings.topic_interactions, interactions)
        worker.wait_for("cxstream_events_folded_total", 1, kind="interaction",
                        outcome="duplicate")
        # every decision taken, the deferred one included: 6 sent, 1 deferred, 4 not
        worker.wait_for("cxstream_survey_decisions_total", 11, timeout=120)
        samples = worker.metrics()
        decisions = {(action, reason): total(samples, "cxstream_survey_decisions_total",
                                             action=action, reason=reason)
                     for action, reason in [("sent", "none"), ("deferred", "recent_failure"),
                                            ("suppressed", "open_alert"),
                                            ("suppressed", "recently_answered"),
                                            ("suppressed", "recently_surveyed"),
                                            ("suppressed", "recently_surveyed_any")]}
        report = Api(int(run["web_port"])).get("/api/customers/a3")["surveys"]
    finally:
        worker.stop()
    assert decisions == {("sent", "none"): 6, ("deferred", "recent_failure"): 1,
                         ("suppressed", "open_alert"): 1,
                         ("suppressed", "recently_answered"): 1,
                         ("suppressed", "recently_surveyed"): 1,
                         ("suppressed", "recently_surveyed_any"): 1}
    assert [(d["action"], d["reason"]) for d in report["decisions"]] == [
        ("suppress", "open_alert")]

    deadline = time.monotonic() + 30
    requests: list[dict[str, Any]] = []
    while len(requests) < 6 and time.monotonic() < deadline:
        records = asyncio.run(read_topic(settings, settings.topic_survey_requests))
        requests = [orjson.loads(r.value) for r in records if r.value]
        assert all(dict(r.headers)["cx.contract.version"] == b"1" for r in records)
    found = sorted((r["customer_id"], r["survey"], r["cause_event_id"], r["waited_for"],
                    r["language"], r["segment"]) for r in requests)
    assert found == [("a1", "csat", "d-a1", None, "lt", "smb"),
                     ("a4", "ces", "s-a4", "recent_failure", "en", "enterprise"),
                     ("a5", "csat", "d-a5", None, "en", "smb"),
                     ("a6", "csat", "d-a6", None, "en", "enterprise"),
                     ("a7", "ces", "s-a7", None, "en", "smb"),
                     ("a7", "csat", "d-a7", None, "en", "smb")]
    delayed = next(r for r in requests if r["customer_id"] == "a4")
    failed_at = now - timedelta(seconds=45)
    assert datetime.fromisoformat(delayed["requested_at"]) >= failed_at + timedelta(minutes=1)
    assert len({r["request_id"] for r in requests}) == 6
