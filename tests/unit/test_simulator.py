"""The simulator: determinism, a valid contract, the scripted incidents, replay files."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxstream.cli.main import app
from cxstream.cli.simulator.config import DEMO_HISTORY, SimConfig
from cxstream.cli.simulator.generator import SimRecord, simulate
from cxstream.cli.simulator.incidents import Expectation
from cxstream.cli.simulator.malformed import MISTAKES
from cxstream.cli.simulator.population import build_population, top_share_of_value
from cxstream.cli.simulator.sending import ReplayFileError, read_jsonl, to_json_line, write_jsonl
from cxstream.schemas.events import CustomerProfile, Feedback
from cxstream.schemas.parsing import ErrorClass, InputKind, Rejection, parse_input
from testkit.support import without_times

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SMALL = SimConfig(customers=300, rate=60, duration=30, history_days=2, history_per_day=200)
KIND = {"customers": InputKind.CUSTOMER, "interactions": InputKind.INTERACTION,
        "feedback": InputKind.FEEDBACK}
EXPECTED_CLASS = {"json": ErrorClass.JSON, "encoding": ErrorClass.ENCODING,
                  "score_out_of_range": ErrorClass.SCHEMA, "score_as_text": ErrorClass.SCHEMA,
                  "missing_field": ErrorClass.SCHEMA, "naive_timestamp": ErrorClass.SCHEMA,
                  "oversized": ErrorClass.OVERSIZED, "empty": ErrorClass.EMPTY,
                  "key_mismatch": ErrorClass.KEY, "unknown_survey": ErrorClass.SCHEMA}


def records(config: SimConfig = SMALL, start: datetime = START) -> list[SimRecord]:
    return list(simulate(config, start).records())


def parsed(record: SimRecord) -> Any:
    return parse_input(KIND[record.kind], record.key, record.value, 65_536)


def test_the_same_seed_and_start_give_the_same_records_and_another_seed_does_not() -> None:
    assert records() == records()
    assert records() != records(SMALL.model_copy(update={"seed": 8}))


def test_without_a_fixed_start_only_the_timestamps_move() -> None:
    later = START + timedelta(days=3, hours=1)
    # the daily rhythm depends on the hour, so compare starts at the same hour of day
    assert without_times(records(start=START)) == without_times(
        records(start=START + timedelta(days=3)))
    assert records(start=START) != records(start=later)


def test_without_the_daily_rhythm_any_hour_gives_the_same_records_but_their_times() -> None:
    flat = SMALL.model_copy(update={"daily_rhythm": False, "history_days": 0})
    night, evening = START.replace(hour=2), START.replace(hour=19)
    assert without_times(records(flat, night)) == without_times(records(flat, evening))
    # with the rhythm the two hours differ in traffic (0.1 against 1.7 of the mean)
    assert len(records(SMALL.model_copy(update={"history_days": 0}), night)) < len(
        records(SMALL.model_copy(update={"history_days": 0}), evening))


def test_every_valid_record_meets_the_contract_and_every_malformed_one_is_refused() -> None:
    batch = records()
    refused: Counter[str] = Counter()
    for record in batch:
        result = parsed(record)
        if record.malformed is None:
            assert not isinstance(result, Rejection), (record, result)
        else:
            assert isinstance(result, Rejection), record
            assert result.error_class == EXPECTED_CLASS[record.malformed], record.malformed
            refused[record.malformed] += 1
    live = [r for r in batch if r.at > 0]
    assert 0.01 < sum(refused.values()) / len(live) < 0.04  # malformed_share 0.02
    assert set(refused) <= set(MISTAKES) and len(refused) >= 6


def test_sending_order_profiles_then_history_then_live_in_time_order() -> None:
    batch = records()
    first_other = next(n for n, r in enumerate(batch) if r.kind != "customers")
    assert first_other == SMALL.customers  # the CRM snapshot comes first
    ats = [r.at for r in batch]
    assert ats == sorted(ats)
    history = [r for r in batch[first_other:] if r.at == 0 and r.kind != "customers"]
    times = [parsed(r).occurred_at for r in history]
    assert times == sorted(times) and times[0] >= START - timedelta(days=2)
    assert times[-1] < START
    assert max(r.at for r in batch) < SMALL.duration


def test_daily_rhythm_more_traffic_in_the_evening_than_at_night() -> None:
    config = SMALL.model_copy(update={"history_days": 7, "history_per_day": 2000})
    hours = Counter(parsed(r).occurred_at.hour for r in records(config)
                    if r.at == 0 and r.kind != "customers" and r.malformed is None)
    assert hours[19] > 4 * hours[3]


def test_population_long_tailed_value_segments_owners_and_languages() -> None:
    import random

    for seed in range(5):
        customers = build_population(random.Random(seed), 2000)
        assert 0.65 < top_share_of_value(customers) < 0.95
        segments = Counter(c.segment for c in customers)
        assert segments["consumer"] > segments["smb"] > segments["enterprise"] > 0
        assert all(c.owner for c in customers if c.segment == "enterprise")
        assert not any(c.owner for c in customers if c.segment == "consumer")
        assert {c.language for c in customers} == {"en", "lt", "et", "pl", "ru"}
        assert all(CustomerProfile.model_validate(c.profile(START.isoformat()))
                   for c in customers[:50])


def test_the_scripted_incidents_are_in_the_stream() -> None:
    simulation = simulate(SMALL, START)
    batch = list(simulation.records())
    [decline] = [e for e in simulation.expectations if e.rule == "high_value_at_risk"]
    [vip] = decline.customers
    assert vip == max(simulation.population, key=lambda c: c.value).customer_id
    assert not any(r.kind == "feedback" and r.key == vip.encode() for r in batch)
    assert Counter(r.incident for r in batch if r.key == vip.encode())["high-value decline"] == 4
    outage = [r for r in batch if r.incident == "delivery outage"]
    assert outage and all(0.15 * SMALL.duration <= r.at <= 0.55 * SMALL.duration
                          for r in outage)
    assert all(json.loads(r.value)["touchpoint"] == "delivery" for r in outage)
    [social] = [e for e in simulation.expectations if e.rule == "social_negative"]
    posts = [r for r in batch if r.incident == "social burst"]
    assert {r.key.decode() for r in posts} == set(social.customers) and len(posts) == 8
    smb = {c.customer_id for c in simulation.population if c.segment == "smb"}

    def nps_of_smb(after: bool) -> float:
        scores = [event.score for r in batch if r.kind == "feedback" and not r.malformed
                  and r.key.decode() in smb and r.at > 0
                  and (r.at >= 0.3 * SMALL.duration) == after
                  and isinstance(event := parsed(r), Feedback) and event.survey == "nps"]
        return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)

    assert nps_of_smb(after=False) - nps_of_smb(after=True) > 40


def test_no_incidents_when_switched_off() -> None:
    simulation = simulate(SMALL.model_copy(update={"incidents": False}), START)
    assert simulation.expectations == []
    assert not any(r.incident for r in simulation.records())


def alert(rule: str, **fields: Any) -> dict[str, Any]:
    return {"rule": rule, "customer_id": None, "segment": None, "reason": {}, **fields}


def test_an_expectation_needs_the_right_rule_subject_and_every_customer() -> None:
    drop = Expectation("drop", "segment_drop", segment="smb", metric="nps")
    assert drop.matches(alert("segment_drop", segment="smb", reason={"metric": "nps"}))
    assert not drop.matches(alert("segment_drop", segment="smb", reason={"metric": "ces"}))
    assert not drop.matches(alert("segment_drop", segment="consumer",
                                  reason={"metric": "nps"}))
    burst = Expectation("burst", "social_negative", customers=frozenset({"a", "b"}))
    only_a = [alert("social_negative", customer_id="a")]
    assert burst.caught_by(only_a) == []
    # one alert per event: a social post that also made a customer at-risk still counts
    both = [*only_a, alert("high_value_at_risk", customer_id="b",
                           reason={"rules_fired": ["high_value_at_risk", "social_negative"]})]
    assert len(burst.caught_by(both)) == 2
    assert Expectation("x", "recurring_issue", key="delivery").caught_by(
        [alert("recurring_issue", reason={"key": "checkout"})]) == []


@given(st.lists(st.tuples(st.floats(0, 1e6, allow_nan=False),
                          st.sampled_from(["customers", "interactions", "feedback"]),
                          st.binary(max_size=20), st.binary(max_size=60),
                          st.sampled_from([None, "json", "empty"])), max_size=20))
@settings(max_examples=50)
def test_jsonl_round_trip_keeps_every_byte(rows: list[tuple[Any, ...]]) -> None:
    import io
    import tempfile

    batch = [SimRecord(at, kind, key.decode("latin-1").encode("utf-8"), value, malformed)
             for at, kind, key, value, malformed in rows]
    buffer = io.StringIO()
    write_jsonl(batch, buffer)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.jsonl"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        back = list(read_jsonl(path))
    assert [(r.kind, r.key, r.value, r.malformed) for r in back] == [
        (r.kind, r.key, r.value, r.malformed) for r in batch]
    assert [r.at for r in back] == pytest.approx([round(r.at, 6) for r in batch])


def test_a_bad_replay_line_is_refused_with_its_number(tmp_path: Path) -> None:
    good = to_json_line(SimRecord(0.5, "feedback", b"c-1", b"{}"))
    path = tmp_path / "run.jsonl"
    path.write_text(good + "\n" + '{"at": 1, "topic": "orders", "key": "k", "value": ""}\n')
    with pytest.raises(ReplayFileError, match=r"run.jsonl:2: .*topic must be one of"):
        list(read_jsonl(path))
    result = CliRunner().invoke(app, ["replay", str(path)])
    assert result.exit_code == 2 and "run.jsonl:2" in result.output


def test_simulate_command_writes_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    args = ["simulate", "--customers", "100", "--rate", "20", "--duration", "10",
            "--history-days", "1", "--history-per-day", "50", "--seed", "3",
            "--start", "2026-11-23T12:00:00+00:00", "--out"]
    runner = CliRunner()
    for name in ("a.jsonl", "b.jsonl"):
        result = runner.invoke(app, [*args, str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first == (tmp_path / "b.jsonl").read_bytes() and first.count(b"\n") > 250
    bad = runner.invoke(app, ["simulate", "--customers", "3", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "--customers" in bad.output


@pytest.mark.parametrize("hour", [1, 13, 22])
def test_the_demo_company_has_plausible_scores_whatever_the_hour(hour: int) -> None:
    """The demo (a flat rate, its incidents, its default size and seed): over the day
    window the scoreboard reads, the segments outside the NPS drop score +20 to +50 and
    the dropping one below 0, at night as in the afternoon."""
    start = datetime(2026, 12, 7, hour, 30, tzinfo=UTC)
    simulation = simulate(SimConfig(**DEMO_HISTORY), start)
    segment = {c.customer_id: c.segment for c in simulation.population}
    midnight = start.replace(hour=0, minute=0)
    answers: dict[str, Counter[str]] = {}
    for record in simulation.records():
        if record.kind != "feedback" or record.malformed:
            continue
        event = json.loads(record.value)
        if event["survey"] != "nps" or datetime.fromisoformat(event["occurred_at"]) < midnight:
            continue
        tally = answers.setdefault(segment[event["customer_id"]], Counter())
        tally["n"] += 1
        tally["promoters"] += event["score"] >= 9
        tally["detractors"] += event["score"] <= 6
    nps = {name: 100 * (t["promoters"] - t["detractors"]) / t["n"]
           for name, t in answers.items()}
    assert all(t["n"] >= 100 for t in answers.values()), answers
    drop = simulation.plan.nps_drop_segment
    assert all(20 <= score <= 50 for name, score in nps.items() if name != drop), nps
    assert nps[drop] < 0, nps


@pytest.mark.parametrize("hour", [1, 13, 22])
@pytest.mark.parametrize(("customers", "rate", "duration"),
                         [(2000, 40.0, 180.0), (1500, 150.0, 40.0)])  # the demo, its test
def test_the_demo_segment_drop_names_delivery_first_whatever_the_hour(
        hour: int, customers: int, rate: float, duration: float) -> None:
    """The scripted NPS drop, split by touchpoint between the day windows the group rules
    compare (yesterday, today up to the live run's end) as the shipped rules name
    drivers: delivery first, at night as in the afternoon."""
    from cxstream.alerts.config import load_rules
    from cxstream.scoring.conventions import Conventions
    from cxstream.scoring.drivers import decompose, summary
    from cxstream.scoring.tallies import Tally, add_answer

    start = datetime(2026, 12, 7, hour, 30, tzinfo=UTC)
    simulation = simulate(SimConfig(customers=customers, rate=rate, duration=duration,
                                    **DEMO_HISTORY), start)
    drop = simulation.plan.nps_drop_segment
    segment = {c.customer_id: c.segment for c in simulation.population}
    today = start.replace(hour=0, minute=0)
    windows = (today - timedelta(days=1), today)
    conventions = Conventions()
    counts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for record in simulation.records():
        if record.kind != "feedback" or record.malformed:
            continue
        event = json.loads(record.value)
        at = datetime.fromisoformat(event["occurred_at"])
        if event["survey"] != "nps" or segment[event["customer_id"]] != drop \
                or at < windows[0]:
            continue
        parts = counts.setdefault(event["touchpoint"], (Counter(), Counter()))
        add_answer(parts[at >= today], "nps", event["score"], conventions)
    found = decompose("nps", {part: (Tally(**before), Tally(**now))
                              for part, (before, now) in counts.items()},
                      conventions, load_rules().drivers.min_answers)
    assert found.change is not None and found.change < -15, found
    assert summary(found).startswith("delivery -"), found.drivers[:3]


def test_a_history_until_midnight_ends_before_the_live_day_and_after_the_profiles() -> None:
    start = datetime(2026, 12, 7, 21, 10, 5, tzinfo=UTC)
    midnight = datetime(2026, 12, 7, tzinfo=UTC)
    config = SimConfig(customers=100, history_days=2, history_per_day=500, duration=5,
                       history_until="midnight")
    assert config.history_gap(start) == start - midnight
    assert SimConfig().history_gap(start) == timedelta(0)
    records = list(simulate(config, start).records())
    profiles = [json.loads(r.value)["updated_at"] for r in records[:100]]  # the leading ones
    history = [datetime.fromisoformat(json.loads(r.value)["occurred_at"]) for r in records
               if r.at == 0.0 and r.kind != "customers" and not r.malformed]
    live = [datetime.fromisoformat(json.loads(r.value)["occurred_at"]) for r in records
            if r.at > 0.0 and not r.malformed and r.kind != "customers"]
    assert len(history) > 900 and live
    assert midnight - timedelta(days=2) <= min(history) and max(history) < midnight
    assert min(live) >= start
    assert max(datetime.fromisoformat(p) for p in profiles) <= min(history)
