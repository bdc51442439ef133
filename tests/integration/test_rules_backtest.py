"""The rules backtest on the real broker: a simulated week (history, then live traffic
with the scripted incidents) goes through a worker with the shipped rules; `cxstream
rules backtest` replays the same topics and reports, per rule, exactly the alerts the
stream raised, and fewer with a stricter rules file."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.kafka.plain_clients import read_topic
from cxstream.streams.settings import load_settings
from testkit.support import configure, start

pytestmark = pytest.mark.integration


def paced(records: list[SimRecord]) -> list[SimRecord]:
    """The week at 250 messages a second, a customer's message in one topic at least
    half a second after their last one in another. A consumer reads each partition in
    order, but two topics in whatever order it fetches them: sent close together, a
    customer's call and answer could be folded in either order, and the rules may then
    decide otherwise than on the order they happened (the replay's order, by record
    time). Half a second lets the worker fold the first before it fetches the second."""
    at, found = 0.0, []
    last: dict[bytes, tuple[float, str]] = {}
    for record in records:
        at += 1 / 250
        before = last.get(record.key)
        if before is not None and before[1] != record.kind:
            at = max(at, before[0] + 0.5)
        last[record.key] = (at, record.kind)
        found.append(replace(record, at=at))
    return found


def test_the_backtest_of_the_shipped_rules_counts_what_the_stream_raised(
        isolated: dict[str, str], tmp_path: Path) -> None:
    simulation = simulate(SimConfig(customers=300, rate=8, duration=60, seed=11,
                                    history_days=7, history_per_day=300),
                          datetime.now(UTC).replace(microsecond=0))
    records = paced(list(simulation.records()))
    profiles = [orjson.loads(r.value) for r in records if r.kind == "customers"
                and r.malformed is None]
    values = sorted(p["value"] for p in profiles if isinstance(p.get("value"), int | float))
    # a fixed high-value threshold (the top fifth of the base): the band of a customer
    # then depends on their own profile only, not on which partition a consumer reads
    # first, so the stream and the replay see the same bands at every event
    threshold = values[int(len(values) * 0.8)]
    run = configure(isolated, high_value_threshold=str(threshold))
    settings = load_settings({}, **run)
    leading = next(n for n, r in enumerate(records) if r.kind != "customers")
    worker = start(run, tmp_path, "worker")
    try:
        worker.wait_for("cxstream_partitions_assigned", 3, timeout=120)

        async def profiles_read() -> None:
            await asyncio.to_thread(worker.wait_for, "cxstream_events_consumed_total",
                                    leading)

        stats = asyncio.run(send_records(settings, records, 1.0, profiles_read))
        worker.wait_for("cxstream_events_consumed_total", stats.sent, timeout=120)
        # the second segment evaluation from now is a whole interval after the last
        # input: it sees every answer, as the replay's last evaluation does, and the
        # recurring issues have counted every signal. (Before, each evaluates prefixes
        # of the week cut at other times: a drop showing in a prefix only would be
        # raised by one of the two alone.)
        ticks = worker.wait_for("cxstream_segment_evaluations_total", 0, what="evaluations")
        worker.wait_for("cxstream_segment_evaluations_total", ticks + 2, timeout=120,
                        what="evaluations")
        raised: dict[str, str] = {}
        event_ids: list[tuple[bytes, bytes | None]] = []
        for record in asyncio.run(read_topic(settings, settings.topic_alerts)):
            alert = orjson.loads(record.value or b"{}")
            raised.setdefault(alert["alert_id"], alert["rule"])
            headers = dict(record.headers)
            # every alert record is a CloudEvent in binary mode, of contract version 1
            assert headers["cx.contract.version"] == b"1"
            assert headers["ce_specversion"] == b"1.0"
            assert headers["ce_source"] == f"/cxstream/{settings.app_id}".encode()
            assert headers["ce_type"].startswith(b"cxstream.alert.")
            assert headers["cx.rule"] == alert["rule"].encode()
            event_ids.append((headers["ce_id"], record.value))
        asked = len(asyncio.run(read_topic(settings, settings.topic_survey_requests)))
    finally:
        assert worker.stop() == 0, worker.log()
    # an update or a follow-up is another event: one id, one value (a record sent again
    # after a failed send would repeat both)
    by_id: dict[bytes, set[bytes | None]] = {}
    for event_id, value in event_ids:
        by_id.setdefault(event_id, set()).add(value)
    assert all(len(values) == 1 for values in by_id.values()), by_id
    assert len(by_id) >= len(raised)  # the first messages, and any updates and follow-ups
    stream = dict(sorted(Counter(raised.values()).items()))
    assert {"detractor", "high_value_at_risk", "recurring_issue",
            "social_negative"} <= set(stream), stream

    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(yaml.safe_dump({
        "detractor": {"nps_max": 2, "csat_max": 1, "ces_max": 1},
        "recurring_issue": {"min_customers": 8}}))
    env = {f"CXSTREAM_{name.upper()}": value for name, value in run.items()}
    result = CliRunner().invoke(app, ["rules", "backtest", "--rules", str(stricter),
                                      "--since", "8d", "-o", "json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["current"]["per_rule"] == stream
    assert report["current"]["inputs"] == stats.sent
    assert report["current"]["rejected"] == stats.malformed
    proposed = report["proposed"]["per_rule"]
    assert proposed["detractor"] < stream["detractor"]
    assert proposed.get("recurring_issue", 0) <= stream["recurring_issue"]
    assert sum(proposed.values()) < sum(stream.values())
    changes = {(row["rule"], row["change"]) for row in report["comparison"]}
    assert ("detractor", "fewer") in changes
    examples = [group["examples"] for group in report["proposed"]["groups"]]
    assert all(1 <= len(found) <= 3 for found in examples)

    text = CliRunner().invoke(app, ["rules", "backtest", "--rules", str(stricter),
                                    "--since", "8d"], env={**env, "COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "alerts that would have fired" in text.output and "fewer" in text.output

    # the survey policy, on the same history: what the stream sent, and a quieter policy
    quieter = tmp_path / "quieter.yaml"
    quieter.write_text(yaml.safe_dump({"surveys": {"fatigue": {"any_survey_days": 30}}}))
    surveys = CliRunner().invoke(app, ["surveys", "backtest", "--rules", str(quieter),
                                       "--since", "8d", "-o", "json"], env=env)
    assert surveys.exit_code == 0, surveys.output
    found = json.loads(surveys.output)
    current_totals = found["current"]["totals"]
    sent = current_totals.get("sent", 0) + current_totals.get("sent after waiting", 0)
    assert sent == asked > 0, (current_totals, asked)
    proposed_totals = found["proposed"]["totals"]
    assert proposed_totals.get("sent", 0) < current_totals.get("sent", 0)
    reasons = {(row["outcome"], row["reason"]) for row in found["comparison"]
               if row["proposed"] > row["current"]}
    assert ("suppressed", "recently_surveyed_any") in reasons
