"""The alert lifecycle end to end on the real broker: an alert raised by the pipeline is
acknowledged and resolved through the API as a user of the users file, its history is on
the lifecycle topic, its case survives a SIGKILL of the worker, and an alert nobody
touches escalates and is posted again."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cxstream.streams.settings import load_settings
from testkit.support import (
    SECRET,
    TOKEN,
    AlertsClient,
    base_env,
    configure,
    feedback,
    free_port,
    interaction,
    lifecycle_records,
    profile,
    send,
    start,
    wait_until,
)
from tests.receiver import Receiver

pytestmark = pytest.mark.integration
ALICE = "alice-token-0123456789abcdef"


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"name": "alice", "token": ALICE, "teams": ["smb-support"]},
        {"name": "bob", "token": "bob-token-0123456789abcdef", "teams": ["key-accounts"]}]}))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({
        # a negative social post is an info alert due in 2 seconds: nobody acts on it
        "social_negative": {"severity": "info"},
        "high_value_at_risk": {"enabled": False},  # one rule per customer here
        "routing": {"segment_teams": {"smb": "smb-support"}},
        "response_hours": {"critical": 4, "warning": 24, "info": 2 / 3600},
        "lifecycle": {"check_every_seconds": 0.5,
                      "escalation_targets": {"smb-support": "smb-leads"}},
    }))
    return users, rules


def cli(values: dict[str, str], *args: str, token: str | None = None) -> Any:
    env = base_env(**values)
    if token:
        env["CXSTREAM_USER_TOKEN"] = token
    done = subprocess.run([sys.executable, "-m", "cxstream", "alerts", *args, "-o", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return orjson.loads(done.stdout)


def test_an_alert_is_acknowledged_resolved_survives_a_kill_and_one_left_alone_escalates(
        isolated: dict[str, str], tmp_path: Path) -> None:
    users, rules = write_files(tmp_path)
    receiver = Receiver(free_port(), SECRET).start()
    values = configure(isolated, users_file=str(users), rules_file=str(rules),
                       webhook_url=receiver.url, webhook_secret=SECRET)
    settings = load_settings({}, **values)
    port = int(values["web_port"])
    alice, machine = AlertsClient(port, ALICE), AlertsClient(port, TOKEN)
    bob = AlertsClient(port, "bob-token-0123456789abcdef")
    worker = start(values, tmp_path, "worker")
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        send(settings, settings.topic_customers, [
            profile(customer_id="sam", segment="smb", updated_at=now),
            profile(customer_id="sue", segment="smb", updated_at=now)])
        worker.wait_for("cxstream_events_folded_total", 2, kind="customer")
        send(settings, settings.topic_feedback, [feedback(
            event_id="sam-nps", customer_id="sam", score=2, occurred_at=now,
            comment="Nobody called me back")])
        [detractor] = wait_until(lambda: alice.alerts(rule="detractor"), timeout=60)
        alert_id = detractor["alert_id"]
        assert detractor["status"] == "open" and detractor["owner"] == "smb-support"
        assert bob.alerts(rule="detractor") == []  # not bob's team
        assert len(machine.alerts(rule="detractor")) == 1  # the shared token sees all

        acked = alice.act(alert_id, "ack")
        assert acked.status_code == 200, acked.text
        assert acked.json()["change"]["actor"] == "alice"
        assert alice.act(alert_id, "ack").status_code == 409  # acknowledged already
        assert alice.act("detractor-unknown", "ack").status_code == 404
        assert bob.act(alert_id, "ack").status_code == 404  # bob may not see it
        assert alice.act(alert_id, "resolve", category="shrugged").status_code == 400
        # inputs that once answered 500 get a 400 naming the field
        early = alice.act(alert_id, "snooze", until="0001-01-01T00:00:00+14:00")
        assert early.status_code == 400 and early.json()["error"].startswith("until:")
        lone = alice.http.post(f"/api/alerts/{alert_id}/note",
                               content=b'{"text": "call back \\ud800"}',
                               headers={"Content-Type": "application/json"})
        assert lone.status_code == 400 and lone.json()["error"].startswith("text:")

        assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
        worker = start(values, tmp_path, "worker-again")
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        shown = wait_until(lambda: (r := alice.http.get(f"/api/alerts/{alert_id}"))
                           .status_code == 200 and r, timeout=60)
        assert shown, worker.log()
        data = shown.json()
        assert data["alert"]["status"] == "acknowledged"  # the case survived the kill
        assert [c["action"] for c in data["history"]] == ["raised", "acknowledged"]
        assert data["customer"]["customer_id"] == "sam"

        resolved = alice.act(alert_id, "resolve", category="contacted",
                             note="called back, apologised")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["alert"]["status"] == "resolved"

        history = lifecycle_records(settings, alert_id)
        assert [r["history"][-1]["action"] for r in history] == [
            "raised", "acknowledged", "resolved"]
        assert history[-1]["history"][-1]["actor"] == "alice"
        assert history[-1]["history"][-1]["reason"] == "called back, apologised"

        # an info alert nobody acknowledges: escalated one step, to the team's target
        send(settings, settings.topic_interactions, [interaction(
            event_id="sue-post", customer_id="sue", channel="social", touchpoint="delivery",
            sentiment=-0.9, text="Worst delivery ever", occurred_at=now)])
        escalated = wait_until(lambda: [r for r in receiver.received
                                        if r.alert.get("notice") == "escalated"], timeout=60)
        assert escalated, worker.log()
        follow_up = escalated[0]
        assert follow_up.alert["customer_id"] == "sue" and follow_up.signature_ok
        assert follow_up.alert["severity"] == "warning" and follow_up.alert["owner"] == "smb-leads"
        assert follow_up.alert_id_header.endswith(".escalated.1")
        raised_posts = [r for r in receiver.received if r.alert.get("customer_id") == "sue"
                        and r.alert.get("notice") is None]
        assert len(raised_posts) == 1  # posted when raised, then again when escalated
        resolved_posts = wait_until(lambda: [r for r in receiver.received
                                             if r.alert.get("notice") == "resolved"])
        assert [r.alert["alert_id"] for r in resolved_posts] == [alert_id]
        leads = machine.alerts(customer_id="sue")
        assert leads[0]["escalations"] >= 1 and leads[0]["team"] == "smb-leads"

        # the same from the command line, as alice: she sees sue's alert no more (it moved
        # to smb-leads), and the machine token acknowledges it
        listed = cli(values, "list", "--customer-id", "sue", token=ALICE)
        assert listed["alerts"] == []
        sue_alert = leads[0]["alert_id"]
        acked_cli = cli(values, "ack", sue_alert)
        assert acked_cli["alert"]["status"] == "acknowledged"
        shown_cli = cli(values, "show", sue_alert)
        assert [c["action"] for c in shown_cli["history"]][-1] == "acknowledged"
    finally:
        assert worker.stop() == 0, worker.log()
        receiver.stop()
