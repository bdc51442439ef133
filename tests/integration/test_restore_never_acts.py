"""Restoring state never acts, on the real broker: alerts acknowledged and resolved
before a restart stay resolved when the worker comes back after their deadlines passed.
No escalation is posted and nothing is written to the lifecycle topic, while the
deadline check runs after the recovery (its ticks are counted)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxstream.cli.processes import WorkerProcess
from cxstream.cli.scrape import total
from cxstream.streams.settings import load_settings
from testkit.support import (
    SECRET,
    TOKEN,
    AlertsClient,
    configure,
    feedback,
    free_port,
    lifecycle_records,
    profile,
    send,
    start,
    wait_until,
)
from tests.receiver import Receiver

pytestmark = pytest.mark.integration
CUSTOMERS = [f"r{n:03d}" for n in range(60)]
ACT_WITHIN_SECONDS = 20


def rules_file(tmp_path: Path) -> Path:
    """Detractor alerts only, due within ACT_WITHIN_SECONDS, checked ten times a second."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({
        "high_value_at_risk": {"enabled": False},  # detractor alerts only
        "recurring_issue": {"enabled": False},
        "segment_drop": {"enabled": False},
        "response_hours": {"critical": 4, "warning": ACT_WITHIN_SECONDS / 3600, "info": 4},
        "lifecycle": {"check_every_seconds": 0.1,
                      "resolve_hours": {"critical": 24, "warning": ACT_WITHIN_SECONDS / 3600,
                                        "info": 24}},
    }))
    return rules


def raise_alerts(settings: Any, machine: AlertsClient, now: str) -> list[dict[str, Any]]:
    send(settings, settings.topic_customers, [
        profile(customer_id=c, segment="smb", updated_at=now) for c in CUSTOMERS])
    send(settings, settings.topic_feedback, [
        feedback(event_id=f"{c}-nps", customer_id=c, score=1, occurred_at=now)
        for c in CUSTOMERS])
    rows: list[dict[str, Any]] = wait_until(
        lambda: len(found := machine.alerts(rule="detractor", limit="500"))
        == len(CUSTOMERS) and found, timeout=90)
    return rows


def settle(machine: AlertsClient, rows: list[dict[str, Any]], settings: Any) -> dict[str, int]:
    """Acknowledge, then resolve, every alert; the lifecycle records of each."""
    for row in rows:
        assert machine.act(row["alert_id"], "ack").status_code == 200
        assert machine.act(row["alert_id"], "resolve", category="contacted").status_code \
            == 200
    written = {row["alert_id"]: len(lifecycle_records(settings, row["alert_id"]))
               for row in rows}
    assert set(written.values()) == {3}  # raised, acknowledged, resolved
    return written


def past_the_deadlines(now: str) -> None:
    wait_until(lambda: (datetime.now(UTC) - datetime.fromisoformat(now)).total_seconds()
               > ACT_WITHIN_SECONDS * 2 + 2, timeout=120)


def nothing_acted(settings: Any, machine: AlertsClient, receiver: Receiver,
                  written: dict[str, int], worker: WorkerProcess) -> None:
    resolved = machine.alerts(status="resolved", limit="500")
    assert len(resolved) == len(CUSTOMERS), worker.log()
    assert {alert_id: len(lifecycle_records(settings, alert_id))
            for alert_id in written} == written  # nothing written
    assert not [r for r in receiver.received if r.alert.get("notice") == "escalated"]
    changes = {dict(labels).get("action"): value for (name, labels), value
               in worker.metrics().items() if name == "cxstream_alert_lifecycle_changes_total"}
    assert changes.get("escalated", 0) == 0


def test_a_restart_after_the_deadlines_escalates_nothing_and_writes_nothing(
        isolated: dict[str, str], tmp_path: Path) -> None:
    receiver = Receiver(free_port(), SECRET).start()
    values = configure(isolated, rules_file=str(rules_file(tmp_path)),
                       webhook_url=receiver.url, webhook_secret=SECRET)
    settings = load_settings({}, **values)
    machine = AlertsClient(int(values["web_port"]), TOKEN)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    worker = start(values, tmp_path, "worker")
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        written = settle(machine, raise_alerts(settings, machine, now), settings)
        assert worker.stop() == 0, worker.log()
        # back after every deadline passed: the changelog holds each case's open state
        # before its later ones
        past_the_deadlines(now)
        worker = start(values, tmp_path, "worker-again")
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        assert worker.wait_for("cxstream_timer_ticks_total", 20, timeout=60,
                               timer="check_alert_deadlines", outcome="ran") >= 20
        nothing_acted(settings, machine, receiver, written, worker)  # after 2 s of checks
    finally:
        assert worker.stop() == 0, worker.log()
        receiver.stop()


def test_partitions_handed_back_are_not_acted_on_from_their_stale_cases(
        isolated: dict[str, str], tmp_path: Path) -> None:
    # worker A raises the alerts; B joins and takes some partitions; the alerts are
    # acknowledged and resolved (B's through B); B stops after the deadlines passed, and A
    # takes its partitions back holding their cases as they were when it gave them up
    # ("open", past the deadline) until it has read B's changes from the changelog
    receiver = Receiver(free_port(), SECRET).start()
    values = configure(isolated, rules_file=str(rules_file(tmp_path)),
                       webhook_url=receiver.url, webhook_secret=SECRET,
                       session_timeout_seconds="10")
    settings = load_settings({}, **values)
    machine = AlertsClient(int(values["web_port"]), TOKEN)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    first = start(values, tmp_path, "first")
    second = None
    try:
        first.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        rows = raise_alerts(settings, machine, now)
        second = start({**values, "web_port": str(free_port()),
                        "data_dir": str(tmp_path / "second")}, tmp_path, "second")
        wait_until(lambda: total(first.metrics(), "cxstream_partitions_assigned") < 3
                   and total(second.metrics(), "cxstream_partitions_assigned") >= 1,
                   timeout=120)
        wait_until(lambda: len(machine.alerts(rule="detractor", limit="500"))
                   == len(CUSTOMERS), timeout=60)  # both serve again
        written = settle(machine, rows, settings)
        past_the_deadlines(now)
        waited = total(first.metrics(), "cxstream_timer_ticks_total",
                       timer="check_alert_deadlines", outcome="waited")
        assert second.stop() == 0, second.log()
        first.wait_for("cxstream_partitions_assigned", 3, timeout=120)
        assert first.wait_for("cxstream_timer_ticks_total", waited + 1, timeout=5,
                              timer="check_alert_deadlines", outcome="waited") > waited
        ran = total(first.metrics(), "cxstream_timer_ticks_total",
                    timer="check_alert_deadlines", outcome="ran")
        first.wait_for("cxstream_timer_ticks_total", ran + 20, timeout=60,
                       timer="check_alert_deadlines", outcome="ran")
        nothing_acted(settings, machine, receiver, written, first)
    finally:
        if second is not None:
            second.stop()
        assert first.stop() == 0, first.log()
        receiver.stop()
