"""The main job, end to end: the demo in a short accelerated run against the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cxstream.streams.ingest.deadletter_record import read_headers
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import load_settings
from testkit.support import base_env, free_port

pytestmark = pytest.mark.integration


#: the error class each of the simulator's mistakes is dead-lettered under
MISTAKE_CLASSES = {"json": "json", "encoding": "encoding", "score_out_of_range": "schema",
                   "score_as_text": "schema", "missing_field": "schema",
                   "naive_timestamp": "schema", "oversized": "oversized", "empty": "empty",
                   "key_mismatch": "key", "unknown_survey": "schema"}


def test_the_demo_catches_every_scripted_incident_and_dead_letters_the_malformed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    summary_file = tmp_path / "summary.json"
    env = base_env(bootstrap_servers=kafka_bootstrap, data_dir=str(tmp_path / "worker"),
                   web_port=str(free_port()))
    # accelerated: 40 s of live traffic at 150 events/s instead of 180 s at 40
    result = subprocess.run(
        [sys.executable, "-m", "cxstream", "demo", "--customers", "1500", "--rate", "150",
         "--duration", "40", "--summary-json", str(summary_file)],
        env=env, capture_output=True, text=True, timeout=420, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = json.loads(summary_file.read_text())
    print(json.dumps({k: summary[k] for k in ("events_sent", "malformed_sent",
                                              "deadlettered", "alerts_per_rule")}))

    # every scripted incident raised its alert
    assert summary["finished"] and summary["succeeded"]
    assert len(summary["incidents"]) == 4
    for incident, alert_ids in summary["incidents"].items():
        assert alert_ids, incident
    assert len(summary["incidents"]["burst of negative social posts (8 customers)"]) == 8
    # the alerts were shown as they fired, one line each
    for rule in ("high_value_at_risk", "recurring_issue", "social_negative", "segment_drop"):
        assert rule in result.stdout
    # the segment's drop names what drove it, as printed: its deliveries, scripted to go
    # bad (the printed line may be wrapped: read as one line)
    printed = " ".join(result.stdout.split())
    assert "NPS of segment smb fell to" in printed
    drops = [part[:200] for part in printed.split("NPS of segment smb fell to")[1:]]
    assert all(part.split("window)", 1)[1].startswith(": delivery -") for part in drops), drops
    assert "Today per segment" in result.stdout and "smb" in result.stdout
    # the prediction model trained before the start, its evaluation printed
    model = summary["model"]
    assert model is not None and model["auc"] >= 0.75 and model["largest_decile_gap"] < 0.1
    assert f"prediction model {model['model_version']}: trained on" in printed
    # the console's address with the demo user's token, and the lifecycle in the summary
    assert "/console  (sign in as demo with the token " in result.stdout
    assert summary["alerts_acknowledged"] > 0, output[-3000:]
    assert summary["alerts_escalated"] > 0, output[-3000:]
    assert "alerts escalated" in result.stdout and "ESCALATED" in result.stdout
    # survey requests sent, and others not sent with the fatigue rule's reason
    surveys = summary["survey_requests"]
    assert surveys.get("sent", 0) > 0, surveys
    assert any(what.startswith("suppressed: recently") for what in surveys), surveys
    assert "survey requests sent" in result.stdout
    # the top three priorities (value and customers mixed), with their counts: the
    # scripted delivery outage first, above issues led by the declining VIP's value
    top = summary["top_priorities"]
    assert [row["rank"] for row in top] == [1, 2, 3], top
    assert top[0]["issue"] == "touchpoint:delivery", top
    assert top[0]["largest_share"] < 0.5, top  # broad: no account makes half of it
    assert all(row["customers"] >= max(row["silent"], 1) for row in top), top
    assert "What to fix first" in result.stdout and top[0]["issue"] in result.stdout

    # the malformed share is on the dead-letter topic, each with its reason
    settings = load_settings({}, bootstrap_servers=kafka_bootstrap)
    records = asyncio.run(read_topic(settings, summary["topics"]["deadletter"]))
    classes = Counter(read_headers(list(r.headers))["error.class"] for r in records)
    assert summary["malformed_sent"] > 0
    assert sum(classes.values()) == summary["malformed_sent"] == summary["deadlettered"]
    # each mistake sent is dead-lettered under its class (the simulator's rate follows the
    # hour of the run: at night a short run may not send every kind of mistake)
    sent = Counter[str]()
    for mistake, count in summary["malformed_sent_by_mistake"].items():
        sent[MISTAKE_CLASSES[mistake]] += count
    assert classes == sent

    # nothing left running: the worker it started has exited
    with pytest.raises(ProcessLookupError):
        os.kill(summary["worker_pid"], 0)
