"""Scores and customer state through the HTTP API, on the real broker.

A known event set (duplicates, out-of-order and late answers, a customer without profile)
must give exactly the hand-computed scores, the batch recomputation must agree, and both
must survive a SIGKILL of the worker mid-stream.
"""

from __future__ import annotations

import json
import random
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cxstream.cli.consistency import batch_tallies, differences, stream_tallies
from cxstream.cli.main import app
from cxstream.cli.scrape import total
from cxstream.streams.settings import Settings, load_settings
from testkit.support import (
    TOKEN,
    Api,
    base_time,
    configure,
    feedback,
    known_events,
    profile,
    send,
    start,
)

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_known_events_give_exact_scores_and_customer_state(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    settings_map = configure(isolated)
    settings = load_settings({}, **settings_map)
    t = base_time()
    profiles, answers, interactions = known_events(t)
    worker = start(settings_map, tmp_path, "worker")
    api = Api(settings.web_port)
    try:
        send(settings, settings.topic_customers, profiles)
        worker.wait_for("cxstream_events_folded_total", 3, kind="customer")
        send(settings, settings.topic_feedback, answers)
        send(settings, settings.topic_interactions, interactions)
        worker.wait_for("cxstream_events_consumed_total", 3 + len(answers) + len(interactions))
        metrics = worker.metrics()
        assert total(metrics, "cxstream_events_folded_total", kind="feedback",
                     outcome="duplicate") == 1
        assert total(metrics, "cxstream_events_folded_total", kind="feedback",
                     outcome="late") == 1
        at = t.isoformat()

        enterprise = api.get("/api/scores/segment/enterprise", at=at)["windows"]
        assert enterprise["day"]["current"]["nps"] | {} == {
            "score": 25.0, "n": 4, "promoters": 2, "passives": 1, "detractors": 1,
            "margin_of_error": enterprise["day"]["current"]["nps"]["margin_of_error"]}
        assert enterprise["day"]["current"]["ces"]["score"] == 4.0
        assert enterprise["day"]["current"]["ces"]["hard_pct"] == 50.0
        assert enterprise["day"]["previous"]["nps"] is None
        assert (enterprise["hour"]["current"]["nps"]["score"],
                enterprise["hour"]["current"]["nps"]["n"]) == (0.0, 3)
        assert (enterprise["hour"]["previous"]["nps"]["score"],
                enterprise["hour"]["previous"]["nps"]["n"]) == (100.0, 1)
        assert enterprise["7d"]["current"]["nps"]["n"] == 4

        smb = api.get("/api/scores/segment/smb", at=at)["windows"]["day"]["current"]
        assert (smb["nps"]["score"], smb["nps"]["n"]) == (100.0, 1)
        assert (smb["csat"]["score"], smb["csat"]["n"], smb["csat"]["mean"]) == (50.0, 2, 3.5)
        unknown = api.get("/api/scores/segment/unknown", at=at)["windows"]["day"]["current"]
        assert (unknown["nps"]["score"], unknown["nps"]["n"]) == (-100.0, 1)
        web = api.get("/api/scores/channel/web", at=at)["windows"]["day"]["current"]
        assert (web["nps"]["score"], web["nps"]["n"]) == (40.0, 5)
        phone = api.get("/api/scores/channel/phone", at=at)["windows"]["day"]["current"]
        assert (phone["nps"]["score"], phone["ces"]["n"]) == (-100.0, 1)
        support = api.get("/api/scores/touchpoint/support", at=at)["windows"]["day"]["current"]
        assert (support["nps"]["score"], support["nps"]["n"]) == (0.0, 5)
        checkout = api.get("/api/scores/touchpoint/checkout", at=at)["windows"]["day"]["current"]
        assert (checkout["nps"]["n"], checkout["csat"]["n"]) == (1, 2)

        ranked = api.get("/api/scores/segment", window="day", at=at)["groups"]
        assert [(g["key"], g["score"]) for g in ranked] == [
            ("smb", 100.0), ("enterprise", 25.0), ("unknown", -100.0)]
        assert [g["key"] for g in api.get("/api/scores/segment", window="day", at=at,
                                          min_n=2)["groups"]] == ["enterprise"]

        # value bands are rebuilt every second from the profiles
        deadline = time.monotonic() + 30
        while api.get("/api/value-bands")["customers"] < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        c1 = api.get("/api/customers/c1")
        assert (c1["high_value"], c1["quadrant"]) == (True, "at-risk")
        assert c1["last_scores"]["nps"]["score"] == 3 and c1["negative_signals_in_window"] == 3
        assert [s["event_id"] for s in c1["recent_scores"]] == ["f10", "f1", "f9", "f2"]
        c4 = api.get("/api/customers/c4")
        assert (c4["high_value_in_segment"], c4["quadrant"]) == (False, "growth")
        c3 = api.get("/api/customers/c3")
        assert c3["profile"] is None and c3["quadrant"] is None
        assert [s["event_id"] for s in c3["recent_scores"]] == ["f11", "f4"]  # late kept here

        assert httpx.get(f"http://127.0.0.1:{settings.web_port}/api/customers/c1").status_code \
            == 401
        assert api.client.get("/api/customers/nobody").status_code == 404
        assert api.client.get("/api/scores/region").status_code == 400
        assert differences(batch_tallies(settings),
                           stream_tallies(f"http://127.0.0.1:{settings.web_port}", TOKEN)) == []
        check_cli(settings_map, at)
    finally:
        assert worker.stop() == 0


def check_cli(settings_map: dict[str, str], at: str) -> None:
    """The same answers through `cxstream customer`, `scores` and `recompute`."""
    env = {f"CXSTREAM_{name.upper()}": value for name, value in settings_map.items()}
    customer = runner.invoke(app, ["customer", "show", "c1"], env=env)
    assert customer.exit_code == 0, customer.output
    assert '"quadrant": "at-risk"' in customer.output
    ranked = runner.invoke(app, ["scores", "segment", "--at", at], env=env)
    assert ranked.exit_code == 0, ranked.output
    lines = [line for line in ranked.output.splitlines() if "│" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["smb", "enterprise", "unknown"]
    group = runner.invoke(app, ["scores", "segment", "enterprise", "--at", at], env=env)
    assert group.exit_code == 0 and "25 (4," in group.output, group.output
    answers = runner.invoke(app, ["scores", "segment", "enterprise", "--answers", "--at", at,
                                  "-o", "json"], env=env)
    assert answers.exit_code == 0, answers.output
    shown = json.loads(answers.stdout)["answers"]  # the day's NPS answers, newest first
    assert [a["event_id"] for a in shown] == ["f2", "f1", "f5", "f10"]
    assert shown[0]["customer_id"] == "c1" and shown[0]["score"] == 3
    checked = runner.invoke(app, ["recompute"], env=env)
    assert checked.exit_code == 0 and "agree on all" in checked.output, checked.output
    wrong = "a-wrong-token-of-32-characters-or-more"
    denied = runner.invoke(app, ["customer", "show", "c1"],
                           env={**env, "CXSTREAM_API_TOKEN": wrong})
    assert denied.exit_code == 1 and "401" in denied.output


def random_traffic(settings: Settings, t: datetime, seed: int) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], int]:
    rng = random.Random(seed)
    customers = [f"k{n}" for n in range(200)]
    profiles = [profile(customer_id=c, segment=rng.choice(["enterprise", "smb", "consumer"]),
                        value=rng.paretovariate(1.2) * 100, updated_at=t.isoformat())
                for c in customers[:150]]  # 50 customers never get a profile
    answers = []
    for n in range(2_400):
        survey = rng.choice(["nps", "nps", "csat", "ces"])
        high = {"nps": 10, "csat": 5, "ces": 7}[survey]
        answers.append(feedback(
            event_id=f"e{n}", customer_id=rng.choice(customers), survey=survey,
            score=rng.randint(0 if survey == "nps" else 1, high),
            occurred_at=(t + timedelta(seconds=rng.randint(-1_500, 1_500))).isoformat(),
            channel=rng.choice(["web", "app", "phone"]),
            touchpoint=rng.choice(["checkout", "support", "delivery"])))
    unique = len(answers)
    answers += rng.sample(answers, 240)  # resends of the same events
    rng.shuffle(answers)
    return profiles, answers, unique


def test_sigkill_mid_stream_recovers_tables_without_counting_twice(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    settings_map = configure(isolated, batch_size="100", session_timeout_seconds="8")
    settings = load_settings({}, **settings_map)
    t = base_time()
    profiles, answers, unique = random_traffic(settings, t, seed=7)
    worker = start(settings_map, tmp_path, "first")
    send(settings, settings.topic_customers, profiles)
    worker.wait_for("cxstream_events_folded_total", len(profiles), kind="customer")
    chunks = [answers[i:i + 300] for i in range(0, len(answers), 300)]
    send(settings, settings.topic_feedback, chunks[0] + chunks[1])
    worker.wait_for("cxstream_events_consumed_total", 200 + len(profiles))
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no clean commit
    for chunk in chunks[2:]:
        send(settings, settings.topic_feedback, chunk)
    restarted = start(settings_map, tmp_path, "second")
    api_url = f"http://127.0.0.1:{settings.web_port}"
    try:
        expected = batch_tallies(settings)
        deadline = time.monotonic() + 180
        found: list[Any] = ["not compared yet"]
        while time.monotonic() < deadline and found:
            time.sleep(2)
            try:
                found = differences(expected, stream_tallies(api_url, TOKEN))
            except httpx.HTTPError:
                continue
        metrics = restarted.metrics()
        print(f"\nSIGKILL test: {len(answers)} answers sent ({unique} unique), "
              f"replayed after restart: "
              f"{total(metrics, 'cxstream_events_folded_total', outcome='replayed'):.0f}, "
              f"duplicates ignored: "
              f"{total(metrics, 'cxstream_events_folded_total', outcome='duplicate'):.0f}, "
              f"differing group windows: {len(found)}")
        assert found == [], found[:3]
        # answers lie within 25 min of hh:30, so all in one day window and none late
        day = Api(settings.web_port).get("/api/scores/segment", window="day", at=t.isoformat())
        nps_unique = sum(1 for a in {a["event_id"]: a for a in answers}.values()
                         if a["survey"] == "nps")
        assert sum(group["n"] for group in day["groups"]) == nps_unique
    finally:
        assert restarted.stop() == 0
