"""Priorities (alerts.priorities, streams.issues.priorities): counting each customer once per issue
and window, silent ones included, the revenue at stake, the ranking and its trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.group_rules import signals_of
from cxstream.alerts.priorities import (
    PrioritiesConfig,
    count_signal,
    counted_windows,
    counts,
    empty_count,
    priority_score,
    ranking,
    revalue,
)
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import StateRules
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.plain_customer import Customer
from cxstream.streams.issues.priorities import (
    PriorityBoard,
    count_key,
    decode_mark,
    mark_key,
    parse_count_key,
)
from cxstream.streams.metrics import WorkerMetrics

DAY = 86_400
T = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # 10:00 in the window of 2026-12-02
CONFIG = PrioritiesConfig()


# -- count_signal ----------------------------------------------------------------------

def test_a_customer_counts_once_per_issue_and_window() -> None:
    count, marks = empty_count(), {}
    assert count_signal(count, marks, "touchpoint:delivery", False, 500.0, True, "i", 1)
    assert not count_signal(count, marks, "touchpoint:delivery", False, 500.0, True, "i", 2)
    assert (count["customers"], count["silent"], count["value"]) == (1, 1, 500.0)
    assert (count["top_customers"], count["top_value"]) == (1, 500.0)
    assert marks == {"touchpoint:delivery": [0, 500.0, 1]}


def test_a_silent_customer_who_answers_moves_from_silent_to_answered() -> None:
    count, marks = empty_count(), {}
    count_signal(count, marks, "touchpoint:delivery", False, 80.0, False, "i", 5)
    assert count_signal(count, marks, "touchpoint:delivery", True, 80.0, False, "f", 3)
    assert (count["customers"], count["silent"], count["value"]) == (1, 0, 80.0)
    assert marks == {"touchpoint:delivery": [1, 80.0, 0]}
    # a later silent signal leaves them answered
    assert not count_signal(count, marks, "touchpoint:delivery", False, 80.0, False, "i", 9)
    assert count["silent"] == 0 and marks == {"touchpoint:delivery": [1, 80.0, 0]}


def test_a_silent_customer_predicted_at_risk_counts_until_they_answer() -> None:
    count, marks = empty_count(), {}
    assert count_signal(count, marks, "touchpoint:delivery", False, 300.0, False, "i", 1,
                        predicted=True)
    assert (count["silent"], count["predicted"], count["predicted_value"]) == (1, 1, 300.0)
    assert marks == {"touchpoint:delivery": [0, 300.0, 0, 1]}
    # a later signal with a lower prediction: no longer predicted at risk
    assert count_signal(count, marks, "touchpoint:delivery", False, 300.0, False, "i", 2)
    assert (count["predicted"], count["predicted_value"]) == (0, 0.0)
    assert count_signal(count, marks, "touchpoint:delivery", False, 300.0, False, "i", 3,
                        predicted=True)
    # an answer: known, not predicted (they count as answered)
    assert count_signal(count, marks, "touchpoint:delivery", True, 300.0, False, "f", 1,
                        predicted=True)
    assert (count["silent"], count["predicted"], count["predicted_value"]) == (0, 0, 0.0)
    assert count["customers"] == 1 and count["value"] == 300.0


def test_counts_and_marks_of_before_the_prediction_still_add_up() -> None:
    old_count = {"customers": 2, "silent": 1, "value": 50.0, "top_customers": 0,
                 "top_value": 0.0, "largest": 30.0, "offsets": {"i": 4}}
    summed = counts([(NOW, "touchpoint:delivery", old_count),
                     (NOW, "touchpoint:delivery", {**old_count, "predicted": 1,
                                                   "predicted_value": 30.0})])
    row = summed[NOW, "touchpoint:delivery"]
    assert (row["customers"], row["predicted"], row["predicted_value"]) == (4, 1, 30.0)
    marks = {"touchpoint:delivery": [0, 30.0, 0]}  # a mark of three figures
    assert count_signal(old_count, marks, "touchpoint:delivery", False, 30.0, False, "i", 5,
                        predicted=True)
    assert (old_count["customers"], old_count["predicted"]) == (2, 1)
    ranked = ranking(summed, NOW, BEFORE, CONFIG)["issues"][0]
    assert (ranked["predicted_at_risk"], ranked["predicted_value"]) == (1, 30.0)


def test_a_customer_counts_for_their_latest_value_and_band() -> None:
    count, marks = empty_count(), {}
    # the first signal came before the profile: no value known yet
    count_signal(count, marks, "touchpoint:delivery", False, None, False, "i", 1)
    assert (count["customers"], count["value"]) == (1, 0.0)
    # the next signal knows it: the count takes it, the customer still counts once
    assert count_signal(count, marks, "touchpoint:delivery", False, 900.0, True, "i", 2)
    assert (count["customers"], count["value"], count["top_customers"],
            count["top_value"]) == (1, 900.0, 1, 900.0)
    # a new profile: the value and band follow it (offsets of the customers topic)
    assert revalue(count, marks, "touchpoint:delivery", 300.0, False, 5)
    assert (count["value"], count["top_customers"], count["top_value"]) == (300.0, 0, 0.0)
    assert not revalue(count, marks, "touchpoint:delivery", 300.0, False, 6)  # the same
    assert not revalue(count, {"other": [0, 1.0, 0]}, "touchpoint:delivery", 5.0, False, 7)
    # the same profile read again after a crash: nothing moves twice
    assert not revalue(count, {"touchpoint:delivery": [0, 900.0, 1]},
                       "touchpoint:delivery", 300.0, False, 5)
    assert count["value"] == 300.0


def test_a_signal_read_again_after_a_crash_moves_nothing_but_the_marks() -> None:
    count, marks = empty_count(), {}
    count_signal(count, marks, "topic:billing", True, 10.0, False, "f", 7)
    lost_marks: dict[str, int] = {}  # the count was written, the marks were not
    assert not count_signal(count, lost_marks, "topic:billing", True, 10.0, False, "f", 7)
    assert count["customers"] == 1 and lost_marks == {"topic:billing": [1, 10.0, 0]}
    # offsets are per input topic: offset 7 of the interactions topic is another event
    assert count_signal(count, {}, "topic:billing", False, 5.0, False, "i", 7)
    assert count["customers"] == 2


def test_a_customer_without_a_profile_counts_with_no_value() -> None:
    count = empty_count()
    count_signal(count, {}, "touchpoint:web", False, None, False, "i", 0)
    assert (count["customers"], count["value"], count["top_customers"]) == (1, 0.0, 0)


signal_strategy = st.tuples(st.sampled_from(["a", "b", "c", "d"]),  # customer
                            st.sampled_from(["touchpoint:delivery", "topic:billing"]),
                            st.booleans())  # answered


@settings(max_examples=200, deadline=None)
@given(st.lists(signal_strategy, max_size=30), st.randoms(use_true_random=False))
def test_counts_are_distinct_customers_whatever_the_order_and_duplicates(
        signals: list[tuple[str, str, bool]], rng: Any) -> None:
    values = {"a": 100.0, "b": 20.0, "c": 3.5, "d": 0.0}
    shuffled = list(signals) + signals[: len(signals) // 2]  # duplicates
    rng.shuffle(shuffled)
    results = []
    for order in (signals, shuffled):
        count = {group: empty_count() for group in ("touchpoint:delivery", "topic:billing")}
        marks: dict[str, dict[str, int]] = {}
        for offset, (customer, group, answered) in enumerate(order):
            count_signal(count[group], marks.setdefault(customer, {}), group, answered,
                         values[customer], customer == "a", "f" if answered else "i",
                         offset)
        results.append({group: {name: c[name] for name in
                                ("customers", "silent", "value", "top_customers")}
                        for group, c in count.items()})
    for group in ("touchpoint:delivery", "topic:billing"):
        hit = {c for c, g, _ in signals if g == group}
        answered = {c for c, g, a in signals if g == group and a}
        expected = {"customers": len(hit), "silent": len(hit - answered),
                    "value": sum(values[c] for c in hit), "top_customers": int("a" in hit)}
        assert results[0][group] == expected
        assert results[1][group] == expected


# -- ranking ------------------------------------------------------------------------------

def issue(customers: int, value: float, silent: int = 0, top_value: float = 0.0,
          top_customers: int = 0) -> dict[str, Any]:
    return {"customers": customers, "silent": silent, "value": value,
            "top_customers": top_customers, "top_value": top_value}


NOW, BEFORE = 1_000 * DAY, 999 * DAY
SUMMED = counts([
    (NOW, "touchpoint:delivery", issue(3, 9_000.0, silent=3, top_value=9_000.0,
                                       top_customers=3)),
    (NOW, "touchpoint:billing", issue(40, 2_000.0, silent=5)),
    (NOW, "topic:waiting", issue(2, 50.0)),
    (BEFORE, "touchpoint:billing", issue(10, 500.0)),
    (BEFORE, "touchpoint:delivery", issue(3, 7_000.0)),
    (BEFORE, "topic:staff", issue(4, 100.0)),
])


def test_revenue_at_stake_puts_few_high_value_customers_first() -> None:
    answer = ranking(SUMMED, NOW, BEFORE, PrioritiesConfig(rank_by="value"))
    rows = answer["issues"]
    assert [row["issue"] for row in rows] == ["touchpoint:delivery", "touchpoint:billing",
                                              "topic:waiting"]
    delivery = rows[0]
    assert (delivery["rank"], delivery["customers"], delivery["silent"],
            delivery["answered"]) == (1, 3, 3, 0)
    assert delivery["top_value_share"] == 1.0 and delivery["area"] == "delivery"
    assert delivery["previous"] == {"customers": 3, "value": 7000.0}
    assert delivery["trend"] == "steady" and delivery["change"]["value"] == 2000.0
    assert rows[1]["trend"] == "rising" and rows[1]["change"]["customers"] == 30
    assert rows[2]["trend"] == "new" and rows[2]["few"] is True  # 2 < min_customers 3
    assert rows[2]["previous"] is None and rows[2]["customers"] == 2


def test_ranking_by_customers_and_by_a_mix() -> None:
    by_customers = ranking(SUMMED, NOW, BEFORE, CONFIG, rank_by="customers")
    assert [row["key"] for row in by_customers["issues"]] == ["billing", "delivery",
                                                              "waiting"]
    # mix, half and half: delivery 0.5*1 + 0.5*3/40, billing 0.5*2000/9000 + 0.5*1
    mix = ranking(SUMMED, NOW, BEFORE, CONFIG, rank_by="mix")
    scores = {row["key"]: row["score"] for row in mix["issues"]}
    assert scores["delivery"] == round(0.5 + 0.5 * 3 / 40, 6)
    assert scores["billing"] == round(0.5 * 2000 / 9000 + 0.5, 6)
    assert mix["value_weight"] == 0.5
    heavy = PrioritiesConfig(value_weight=0.0)
    assert ranking(SUMMED, NOW, BEFORE, heavy, rank_by="mix")["issues"][0]["key"] == "billing"


def test_one_large_account_does_not_lead_a_wide_outage_by_default() -> None:
    """Support: 3 customers, one of them an account worth 2.2 M; delivery: an outage
    hitting 281 customers worth 300 k. The default ranking (mix) puts the outage first,
    and the support issue shows that one account is nearly all of its value."""
    board = PrioritiesConfig()
    assert board.rank_by == "mix"
    marks: dict[str, Any] = {}
    support, outage = empty_count(), empty_count()
    for n, value in enumerate((2_200_000.0, 40.0, 30.0)):
        count_signal(support, marks.setdefault(f"s{n}", {}), "touchpoint:support", False,
                     value, False, "i", n)
    for n in range(281):
        count_signal(outage, marks.setdefault(f"o{n}", {}), "touchpoint:delivery", False,
                     300_000.0 / 281, False, "i", n)
    summed = counts([(NOW, "touchpoint:support", support),
                     (NOW, "touchpoint:delivery", outage)])
    rows = ranking(summed, NOW, BEFORE, board)["issues"]
    assert [row["key"] for row in rows] == ["delivery", "support"]
    assert rows[1]["largest_value"] == 2_200_000.0 and rows[1]["largest_share"] > 0.99
    assert rows[0]["largest_share"] == round(1 / 281, 3)
    by_value = ranking(summed, NOW, BEFORE, board, rank_by="value")["issues"]
    assert by_value[0]["key"] == "support"  # asked for by value, the account leads


def test_a_broad_issue_with_one_huge_account_does_not_outrank_a_broader_one() -> None:
    """Checkout: 94 customers, one of them worth 2 M (the rest 300 each); delivery: 167
    customers at 300. In mix, no account counts more than the issue's other customers
    together, so the broader delivery issue leads."""
    checkout = {**issue(94, 2_000_000.0 + 93 * 300.0), "largest": 2_000_000.0}
    delivery = {**issue(167, 167 * 300.0), "largest": 300.0}
    summed = counts([(NOW, "touchpoint:checkout", checkout),
                     (NOW, "touchpoint:delivery", delivery)])
    rows = ranking(summed, NOW, BEFORE, PrioritiesConfig())["issues"]
    assert [row["key"] for row in rows] == ["delivery", "checkout"]
    assert rows[1]["value"] == 2_027_900.0  # shown whole


def test_an_issue_of_too_few_customers_never_ranks_above_one_with_enough() -> None:
    summed = counts([(NOW, "touchpoint:support", issue(2, 5_000_000.0)),
                     (NOW, "touchpoint:delivery", issue(3, 10.0))])
    for rank_by in ("value", "customers", "mix"):
        rows = ranking(summed, NOW, BEFORE, CONFIG, rank_by=rank_by)["issues"]  # type: ignore[arg-type]
        assert [(row["key"], row["few"]) for row in rows] == [("delivery", False),
                                                             ("support", True)], rank_by


def test_the_largest_account_of_an_issue_is_the_largest_of_every_partition() -> None:
    summed = counts([(NOW, "topic:a", {**issue(2, 10.0), "largest": 7.0}),
                     (NOW, "topic:a", {**issue(3, 50.0), "largest": 30.0}),
                     (NOW, "topic:a", issue(1, 1.0))])  # a count kept before the field
    assert summed[NOW, "topic:a"]["largest"] == 30.0
    row = ranking(summed, NOW, BEFORE, CONFIG)["issues"][0]
    assert (row["largest_value"], row["largest_share"]) == (30.0, round(30 / 61, 3))


def test_kind_filter_and_areas() -> None:
    topics = ranking(SUMMED, NOW, BEFORE, CONFIG, kind="topic")
    assert [row["issue"] for row in topics["issues"]] == ["topic:waiting"]
    areas = ranking(SUMMED, NOW, BEFORE, CONFIG, by_area=True)
    by_area = {row["key"]: row for row in areas["issues"]}
    assert set(by_area) == {"delivery", "trust", "responsiveness"}
    assert by_area["trust"]["customers"] == 40 and by_area["trust"]["kind"] == "area"
    assert by_area["responsiveness"]["trend"] == "new"
    assert "counts twice" in areas["note"]


def test_equal_scores_rank_by_customers_then_name() -> None:
    summed = counts([(NOW, "topic:b", issue(2, 10.0)), (NOW, "topic:a", issue(2, 10.0)),
                     (NOW, "topic:c", issue(5, 10.0))])
    rows = ranking(summed, NOW, BEFORE, CONFIG)["issues"]
    assert [row["key"] for row in rows] == ["c", "a", "b"]


def test_a_window_with_no_value_scores_zero_in_a_mix() -> None:
    assert priority_score(issue(0, 0.0), "mix", 0.5, 0.0, 0) == 0.0


def test_partitions_add_up() -> None:
    summed = counts([(NOW, "topic:a", issue(2, 10.0, silent=1)),
                     (NOW, "topic:a", issue(3, 5.0, silent=3))])
    assert summed[NOW, "topic:a"]["customers"] == 5
    assert summed[NOW, "topic:a"]["silent"] == 4 and summed[NOW, "topic:a"]["value"] == 15.0


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="rank_by"):
        RulesConfig.model_validate({"priorities": {"rank_by": "loudest"}})
    with pytest.raises(ValidationError, match="areas"):
        RulesConfig.model_validate({"priorities": {"areas": {"delivery": "speed"}}})
    with pytest.raises(ValidationError, match="window_hours"):
        RulesConfig.model_validate({"priorities": {"window_hours": 0}})


def test_counted_windows_are_the_current_and_previous() -> None:
    current, previous = counted_windows(T.timestamp(), CONFIG)
    assert current == int(datetime(2026, 12, 2, tzinfo=UTC).timestamp())
    assert previous == current - DAY


# -- the board --------------------------------------------------------------------------

class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def board(clock: Clock) -> tuple[PriorityBoard, dict[bytes, bytes], WorkerMetrics]:
    data: dict[bytes, bytes] = {}
    metrics = WorkerMetrics(CollectorRegistry())
    return PriorityBoard(CONFIG, SimpleNamespace(data=data), metrics, clock), data, metrics


def customer(customer_id: str, value: float | None) -> Customer:
    state = Customer(customer_id)
    if value is not None:
        state.profile = ("consumer", value, None, None, 0)
    return state


def failed(event_id: str, customer_id: str, at: datetime, offset: int,
           touchpoint: str = "delivery") -> SourcedEvent:
    return SourcedEvent(Interaction(event_id=event_id, customer_id=customer_id,
                                    occurred_at=at, channel="delivery",
                                    touchpoint=touchpoint, outcome="failure"), offset, 0.0)


def negative(event_id: str, customer_id: str, at: datetime, offset: int,
             comment: str | None = None) -> SourcedEvent:
    return SourcedEvent(Feedback(event_id=event_id, customer_id=customer_id,
                                 occurred_at=at, survey="nps", score=2, channel="web",
                                 touchpoint="delivery", comment=comment), offset, 0.0)


def observe(b: PriorityBoard, data: dict[bytes, bytes], partition: int,
            events: list[tuple[SourcedEvent, Customer, bool | None]],
            topics: list[str] | None = None) -> dict[bytes, bytes | None]:
    config, rules = RulesConfig(), StateRules()
    b.begin()
    for item, state, top in events:
        event = item.event
        assert isinstance(event, Feedback | Interaction)
        b.observe(item, state, signals_of(event, topics or [], None, config, rules), top)
    writes = b.finish(partition)
    for key, value in writes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return writes


def results(metrics: WorkerMetrics) -> dict[str, float]:
    return {s.labels["result"]: s.value for family in metrics.registry.collect()
            if family.name == "cxstream_priority_signals"
            for s in family.samples if s.name.endswith("_total")}


def test_the_board_counts_writes_counts_before_marks_and_serves_shares() -> None:
    clock = Clock(T)
    b, data, metrics = board(clock)
    a, c = customer("a", 900.0), customer("c", 40.0)
    writes = observe(b, data, 1, [
        (failed("e1", "a", T - timedelta(hours=1), 10), a, True),
        (failed("e2", "a", T - timedelta(minutes=30), 11), a, True),  # again
        (negative("f1", "c", T - timedelta(minutes=5), 4, "the courier was rude"), c, False),
        (failed("old", "c", T - timedelta(days=2), 12), c, False),  # before the previous
    ], topics=["staff"])
    start, _ = counted_windows(T.timestamp(), CONFIG)
    keys = list(writes)
    assert keys[:2] == [count_key(1, start, "touchpoint:delivery"),
                        count_key(1, start, "topic:staff")]
    assert set(keys[2:]) == {mark_key(start, "a"), mark_key(start, "c")}
    assert decode_mark(data[mark_key(start, "c")]) == {"touchpoint:delivery": [1, 40.0, 0],
                                                         "topic:staff": [1, 40.0, 0]}
    stored = orjson.loads(data[count_key(1, start, "touchpoint:delivery")])
    assert (stored["customers"], stored["silent"], stored["value"],
            stored["top_value"]) == (2, 1, 940.0, 900.0)
    assert stored["offsets"] == {"i": 10, "f": 4}
    # each event gives two signals here: its touchpoint and the topic
    assert results(metrics) == {"counted": 4, "again": 2, "too_old": 2}
    share = b.local({1, 2}, {start})
    assert share["partitions"] == [1]
    assert sorted(row[1] for row in share["rows"]) == ["topic:staff", "touchpoint:delivery"]
    assert "offsets" not in share["rows"][0][2]
    assert parse_count_key(count_key(1, start, "topic:a|b")) == (1, start, "topic:a|b")


def test_a_recovered_board_reads_its_counts_and_keeps_counting_once() -> None:
    clock = Clock(T)
    b, data, _ = board(clock)
    a = customer("a", 100.0)
    observe(b, data, 0, [(failed("e1", "a", T, 3), a, False)])
    again = PriorityBoard(CONFIG, SimpleNamespace(data=data), None, clock)
    assert again.recovered({0}) == 1
    # the same event read again (its customer's state was lost): nothing moves
    observe(again, data, 0, [(failed("e1", "a", T, 3), a, False)])
    start, _ = counted_windows(T.timestamp(), CONFIG)
    assert again.counts[0][start, "touchpoint:delivery"]["customers"] == 1
    # a new event of the same customer neither (marks), another customer does
    observe(again, data, 0, [(failed("e2", "a", T, 4), a, False),
                             (failed("e3", "b", T, 5), customer("b", None), None)])
    assert again.counts[0][start, "touchpoint:delivery"]["customers"] == 2


def profile_of(customer: str, value: float, offset: int) -> SourcedEvent:
    return SourcedEvent(CustomerProfile(customer_id=customer, segment="consumer",
                                        value=value, updated_at=T), offset, 0.0)


def test_a_profile_read_after_the_signals_gives_the_issues_its_value() -> None:
    clock = Clock(T)
    b, data, metrics = board(clock)
    b.top_of = lambda segment, value: value >= 1000
    late = customer("late", None)  # the call came before the profile
    observe(b, data, 0, [(failed("e1", "late", T, 1), late, None)])
    start, _ = counted_windows(T.timestamp(), CONFIG)
    assert b.counts[0][start, "touchpoint:delivery"]["value"] == 0.0
    late.profile = ("consumer", 5000.0, None, None, 0)
    b.begin()
    b.observe(profile_of("late", 5000.0, 3), late, [], None)
    b.observe(profile_of("nobody", 10.0, 4), customer("nobody", 10.0), [], None)
    writes = b.finish(0)
    count = b.counts[0][start, "touchpoint:delivery"]
    assert (count["customers"], count["value"], count["top_value"]) == (1, 5000.0, 5000.0)
    assert count_key(0, start, "touchpoint:delivery") in writes
    assert mark_key(start, "nobody") not in writes  # counted in no issue: nothing written
    assert results(metrics)["revalued"] == 1


def test_old_windows_are_deleted_and_an_erased_customer_loses_their_marks() -> None:
    clock = Clock(T)
    b, data, _ = board(clock)
    a = customer("a", 100.0)
    observe(b, data, 0, [(failed("e1", "a", T - timedelta(days=1), 1), a, False),
                         (failed("e2", "a", T, 2), a, False)])
    observe(b, data, 1, [(failed("e3", "z", T - timedelta(days=1), 1),
                          customer("z", 1.0), False)])
    current, previous = counted_windows(T.timestamp(), CONFIG)
    assert b.forget(0, "a") == [mark_key(previous, "a"), mark_key(current, "a")]
    assert b.expired(0) == []  # nothing is older than the previous window yet
    clock.at = T + timedelta(days=1)  # yesterday's window is now the one before
    old = b.expired(0)
    assert old == [count_key(0, previous, "touchpoint:delivery"), mark_key(previous, "a")]
    assert (previous, "touchpoint:delivery") not in b.counts[0]
    assert (current, "touchpoint:delivery") in b.counts[0]
    # partition 1's mark is its own (the memory store holds both partitions' keys)
    assert mark_key(previous, "z") not in old


def test_random_touchpoints_beyond_the_group_key_cap_count_under_other() -> None:
    clock = Clock(T)
    data: dict[bytes, bytes] = {}
    metrics = WorkerMetrics(CollectorRegistry())
    b = PriorityBoard(CONFIG, SimpleNamespace(data=data), metrics, clock, max_keys=3)
    people = [customer(f"p{n}", 10.0) for n in range(8)]
    observe(b, data, 0, [(failed(f"e{n}", f"p{n}", T, n, touchpoint=f"random-{n}"),
                          people[n], False) for n in range(8)])
    start, _ = counted_windows(T.timestamp(), CONFIG)
    groups = sorted(group for window, group in b.counts[0] if window == start)
    assert groups == ["touchpoint:(other)", "touchpoint:random-0", "touchpoint:random-1",
                      "touchpoint:random-2"]  # three issues, then (other)
    other = orjson.loads(data[count_key(0, start, "touchpoint:(other)")])
    assert other["customers"] == 5  # nobody lost: counted under (other)
    assert metrics.registry.get_sample_value(
        "cxstream_group_keys_overflow_total", {"dimension": "priority_touchpoint"}) == 5
    # a known touchpoint still counts as itself
    observe(b, data, 0, [(failed("e9", "p9", T, 9, touchpoint="random-1"),
                          customer("p9", 10.0), False)])
    assert orjson.loads(data[count_key(0, start, "touchpoint:random-1")])["customers"] == 2
