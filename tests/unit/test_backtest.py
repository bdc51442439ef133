"""The rules backtest's replay (cli.backtest) on inputs built here: the worker's fold and
rules run on the records' clock, group rules included, and two rules files compared."""

from __future__ import annotations

import asyncio
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cxstream.alerts.config import RulesConfig, load_rules
from cxstream.cli import backtest as bt
from cxstream.scoring.recompute import RawInput
from cxstream.streams.settings import load_settings

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
SETTINGS = load_settings({}, bootstrap_servers="127.0.0.1:1", high_value_threshold="1000")


class Inputs:
    """Records as the topics would hold them: offsets per topic partition."""

    def __init__(self) -> None:
        self.records: list[RawInput] = []
        self.offsets: dict[tuple[str, int], int] = {}

    def add(self, topic: str, event: dict[str, Any], stored: float,
            partition: int | None = None) -> None:
        if partition is None:
            partition = zlib.crc32(event["customer_id"].encode()) % 3
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[topic, partition] = offset + 1
        self.records.append(RawInput(topic, partition, offset, stored,
                                     event["customer_id"].encode(),
                                     json.dumps(event).encode()))

    def profile(self, customer: str, value: float, stored: float,
                segment: str = "smb") -> None:
        self.add(SETTINGS.topic_customers, {"customer_id": customer, "segment": segment,
                                            "value": value, "updated_at": iso(stored)},
                 stored)

    def answer(self, event_id: str, customer: str, score: int, at: float,
               stored: float | None = None, survey: str = "nps") -> None:
        self.add(SETTINGS.topic_feedback, {
            "event_id": event_id, "customer_id": customer, "occurred_at": iso(at),
            "survey": survey, "score": score, "channel": "web", "touchpoint": "delivery"},
            at if stored is None else stored)

    def failure(self, event_id: str, customer: str, at: float) -> None:
        self.add(SETTINGS.topic_interactions, {
            "event_id": event_id, "customer_id": customer, "occurred_at": iso(at),
            "channel": "delivery", "touchpoint": "delivery", "outcome": "failure"}, at)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def replay(inputs: Inputs, config: RulesConfig | None = None) -> bt.Report:
    return asyncio.run(bt.Replay(SETTINGS, config or load_rules(), "rules").run(
        bt.merged(inputs.records)))


def test_customer_rules_fire_as_a_worker_would_on_the_records_clock() -> None:
    inputs = Inputs()
    inputs.profile("rich", 5000, T - 60)
    inputs.profile("poor", 50, T - 60)
    inputs.answer("a1", "poor", 2, T)
    inputs.answer("a2", "poor", 1, T + 600)  # in the same alert's cooldown: folded in
    inputs.answer("old", "rich", 0, T - 3 * 86_400, stored=T + 5)  # a backfill: too old
    inputs.add(SETTINGS.topic_feedback, {"customer_id": "poor", "bad": True}, T + 7)
    for n in range(3):  # three failures: the high-value customer is at risk
        inputs.failure(f"f{n}", "rich", T + 60 + n)
    report = replay(inputs)
    assert report.inputs == 9 and report.rejected == 1
    assert report.per_rule() == {"detractor": 1, "high_value_at_risk": 1}
    groups = bt.report_json(report)["groups"]
    assert [(g["rule"], g["severity"], g["owner"], g["alerts"]) for g in groups] == [
        ("detractor", "warning", "smb-support", 1),
        ("high_value_at_risk", "critical", "smb-support", 1)]
    assert groups[0]["examples"][0]["customer_id"] == "poor"
    assert report.first_record == iso(T - 60)


def test_recurring_issues_count_distinct_customers_and_expire_on_the_records_clock() -> None:
    inputs = Inputs()
    for n in range(5):
        inputs.failure(f"d{n}", f"c{n}", T + n)  # five customers within the hour
    inputs.failure("d0-again", "c0", T + 10)  # the same customer again: still five
    for n in range(4):  # four in the next hour: below the bar
        inputs.failure(f"e{n}", f"e{n}", T + 3600 + n)
    report = replay(inputs)
    assert report.per_rule() == {"recurring_issue": 1}
    stale = Inputs()
    for n in range(5):  # stored three days after they happened: the window is gone
        stale.add(SETTINGS.topic_interactions, {
            "event_id": f"s{n}", "customer_id": f"s{n}", "occurred_at": iso(T),
            "channel": "delivery", "touchpoint": "delivery", "outcome": "failure"},
            T + 3 * 86_400 + n)
    assert replay(stale).per_rule() == {}


def test_segment_drops_are_evaluated_on_the_workers_interval_and_at_the_end() -> None:
    config = RulesConfig.model_validate({
        "segment_drop": {"min_sample": 5, "baseline_windows": 1, "metrics": ["nps"],
                         "evaluate_every_seconds": 30, "dimensions": ["segment"]},
        "detractor": {"enabled": False}, "recurring_issue": {"enabled": False}})
    day = 86_400
    start = T - T % day

    def week(recovery_after: float | None) -> Inputs:
        # 30 answers a side: enough for the always-valid test to find NPS 0 -> -100
        inputs = Inputs()
        for n in range(30):  # yesterday: NPS 0 (15 promoters, 15 detractors)
            inputs.profile(f"c{n}", 100, start - day)
            inputs.profile(f"p{n}", 100, start - day)
            inputs.answer(f"y{n}", f"c{n}", 10 if n < 15 else 0, start - day + 3600 + n)
        # evaluations every 30 s from the first input: one at 01:00:00 today
        for n in range(30):  # today, from 01:00:01 to 01:00:08.25: detractors
            inputs.answer(f"t{n}", f"c{n}", 1, start + 3601 + n * 0.25)
        if recovery_after is not None:  # then promoters: today's score recovers
            for n in range(30):
                inputs.answer(f"r{n}", f"p{n}", 10,
                              start + 3601 + recovery_after + n * 0.25)
        return inputs

    report = replay(week(None), config)
    assert report.per_rule() == {"segment_drop": 1}  # at the end
    (alert,) = report.alerts.values()
    assert alert.segment == "smb" and alert.reason["metric"] == "nps"
    # an evaluation (01:02:00) falls between the detractors and the recovery: raised
    assert replay(week(120), config).per_rule() == {"segment_drop": 1}
    # the recovery before the next evaluation (01:00:30): no evaluation saw the drop
    assert replay(week(10), config).per_rule() == {}
    off = config.model_copy(update={"segment_drop": config.segment_drop.model_copy(
        update={"enabled": False})})
    assert replay(week(None), off).per_rule() == {}


def test_two_rules_files_are_compared_per_rule_severity_and_owner() -> None:
    inputs = Inputs()
    inputs.profile("a", 10, T - 60)
    inputs.profile("b", 10, T - 60, segment="enterprise")
    inputs.answer("a1", "a", 5, T)
    inputs.answer("b1", "b", 1, T)
    current = replay(inputs)
    shipped = load_rules()
    stricter = replay(inputs, shipped.model_copy(update={
        "detractor": shipped.detractor.model_copy(update={"nps_max": 2})}))
    rows = bt.comparison(current, stricter)
    assert rows == [
        {"rule": "detractor", "severity": "warning", "owner": "key-accounts",
         "current": 1, "proposed": 1, "change": "same"},
        {"rule": "detractor", "severity": "warning", "owner": "smb-support",
         "current": 1, "proposed": 0, "change": "fewer"}]
    assert bt.comparison(stricter, current)[1]["change"] == "more"


def test_inputs_merge_by_record_time_keeping_each_partitions_order() -> None:
    records = [RawInput("t", 0, 0, 5.0, None, None), RawInput("t", 0, 1, 1.0, None, None),
               RawInput("u", 1, 0, 3.0, None, None), RawInput("t", 1, 0, 2.0, None, None)]
    order = [(r.topic, r.partition, r.offset) for r in bt.merged(reversed(records))]
    assert order == [("t", 1, 0), ("u", 1, 0), ("t", 0, 0), ("t", 0, 1)]


def test_since_takes_a_span_or_a_time() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert bt.parse_since("30d", now) == now - timedelta(days=30)
    assert bt.parse_since("12h", now) == now - timedelta(hours=12)
    assert bt.parse_since(" 90m ", now) == now - timedelta(minutes=90)
    assert bt.parse_since("2026-11-01T00:00:00+00:00", now) == datetime(2026, 11, 1,
                                                                          tzinfo=UTC)
    with pytest.raises(ValueError, match="30d"):
        bt.parse_since("a month", now)
    with pytest.raises(ValueError, match="UTC offset"):
        bt.parse_since("2026-11-01T00:00:00", now)
