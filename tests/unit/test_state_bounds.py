"""Every table value at its caps stays under the bound computed from the settings, and a
worker refuses settings under which a value could outgrow the producer's request limit."""

from __future__ import annotations

import pytest

from cxstream.alerts.cooldowns import OpenAlert
from cxstream.scoring.bounds import (
    customer_bytes_bound,
    interaction_record_bytes,
    score_record_bytes,
)
from cxstream.scoring.customer import TEXT_KEPT, StateRules
from cxstream.scoring.groups import Counted
from cxstream.scoring.plain_codec import encode
from cxstream.scoring.plain_customer import Customer
from tests.worst import BIG, LATE, WORST, worst


def worst_customer(rules: StateRules, windows: int) -> Customer:
    state = Customer(worst())
    state.profile = (worst(1), 1.7976931348623157e308, worst(2), worst(3), BIG)
    state.last_scores = {survey: (10, BIG, worst(4)) for survey in ("nps", "csat", "ces")}
    state.signals = [BIG] * rules.negative_signals_kept
    state.applied_up_to = {"interaction": BIG, "feedback": BIG, "customer": BIG}
    state.last_event_at = BIG
    state.order = {"s": list(range(rules.recent_scores_kept)),
                   "i": list(range(rules.recent_interactions_kept))}
    state.remembered = {f"i:{worst(n)}": BIG for n in range(rules.seen_event_ids_kept)}
    groups = tuple((dimension, worst(5)) for dimension in
                   ("segment", "channel", "touchpoint", "stage", "agent"))
    state.counted = {f"window{w}"[:16]: {survey: Counted(start=BIG, score=10, at=LATE,
                                                          groups=groups)
                                         for survey in ("nps", "csat", "ces")}
                     for w in range(windows)}
    state.alerts = {"open": {rule: OpenAlert(
        alert_id="customer-" + "f" * 24, rule=rule, severity="critical", until=LATE,
        occurrences=2**62, first_event_time=LATE, created_at=LATE).model_dump(mode="json")
        for rule in ("detractor", "high_value_at_risk", "social_negative")}}
    return state


@pytest.mark.parametrize("rules", [StateRules(), StateRules(
    seen_event_ids_kept=1_000, negative_signals_kept=500, recent_scores_kept=200,
    recent_interactions_kept=200)])
def test_the_worst_customer_stays_under_its_computed_bound(rules: StateRules) -> None:
    raw = encode(2**31, worst_customer(rules, windows=3))
    bound = customer_bytes_bound(rules, windows=3)
    assert len(raw) <= bound < 2 * len(raw)


def test_the_worst_customer_with_a_model_stays_under_its_computed_bound() -> None:
    """Every day of the ledger full, every channel name and touchpoint the longest, every
    reason a channel's share (the longest feature name)."""
    from cxstream.scoring.features import LEDGER_DAYS, Thresholds, note_interaction
    from cxstream.scoring.prediction import REASONS_KEPT

    rules = StateRules()
    state = worst_customer(rules, windows=3)
    thresholds = Thresholds.of(rules)
    for day in range(LEDGER_DAYS + 5):  # more days than kept: the oldest go
        for channel in range(12):  # more channels than kept: the rest count as other
            note_interaction(state.ledger, BIG - (LEDGER_DAYS + 5 - day) * 86_400_000_000,
                             worst(channel), worst(99), "failure", 1e9, -1.0, thresholds)
    for bucket in state.ledger:
        bucket[1:7] = [BIG] * 6
    state.prediction = [0.12345678901234568, "f" * 12, BIG,
                        [[f"channel_share:{worst(n)}", -1.2345678901234567e-300]
                         for n in range(REASONS_KEPT)]]
    raw = encode(2**31, state)
    bound = customer_bytes_bound(rules, windows=3, predicted=True)
    without = customer_bytes_bound(rules, windows=3)
    assert len(raw) <= bound < 2 * len(raw)
    assert len(raw) > without  # the model's part is counted, and it is large


def test_the_worst_history_records_stay_under_their_bounds() -> None:
    import orjson

    text = WORST * TEXT_KEPT
    answer = [worst(), "csat", 10, BIG, worst(1), worst(2), text, "x" * 35]
    interaction = [worst(), BIG, worst(1), worst(2), "abandoned", 1.7976931348623157e308,
                   -0.12345678901234568, text, True]
    assert len(orjson.dumps(answer)) <= score_record_bytes() < 2 * len(orjson.dumps(answer))
    assert len(orjson.dumps(interaction)) <= interaction_record_bytes()


def test_a_worker_refuses_to_start_with_caps_that_outgrow_the_request_limit() -> None:
    from cxstream.streams.settings import load_settings
    from cxstream.streams.worker import WorkerStartError, run_worker

    settings = load_settings({"CXSTREAM_SEEN_EVENT_IDS_KEPT": "100000",
                              "CXSTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    with pytest.raises(WorkerStartError, match="CXSTREAM_SEEN_EVENT_IDS_KEPT") as caught:
        run_worker(settings)  # before any connection to Kafka
    assert "hot state can reach" in str(caught.value)
    fits = load_settings({"CXSTREAM_SEEN_EVENT_IDS_KEPT": "100000",
                          "CXSTREAM_PRODUCER_MAX_REQUEST_BYTES": "104857600"})
    from cxstream.alerts.config import load_rules
    from cxstream.streams.table_limits import bound_problems, request_limit, value_bounds

    assert bound_problems(value_bounds(fits, load_rules()), request_limit(fits)) == []


def test_the_decoded_cache_holds_its_count_and_its_memory_estimate() -> None:
    from cxstream.streams.customers.decoded import DECODED_FACTOR, DecodedCache

    cache: DecodedCache[str] = DecodedCache(max_bytes=100 * DECODED_FACTOR, max_entries=3)
    for n in range(10):
        cache.put(f"c{n}", b"x" * 10, f"state {n}")
    assert len(cache) == 3 and cache.get("c9", b"x" * 10) == "state 9"  # count
    assert cache.get("c0", b"x" * 10) is None  # the least recently written went first
    cache.put("big", b"y" * 95, "big")  # 95 of 100 estimated: the three others go
    assert len(cache) == 1 and cache.bytes == 95 * DECODED_FACTOR
    assert cache.get("big", b"z" * 95) is None  # other bytes: not this value any more


def test_the_group_keys_of_a_dimension_at_the_cap_stay_under_their_bound() -> None:
    import orjson

    from cxstream.scoring.bounds import group_keys_bytes_bound
    from cxstream.scoring.groups import GroupKeys, part_key

    for cap in (1, 10, 1_000):
        keys = GroupKeys(cap)
        for n in range(cap + 3):
            keys.key("touchpoint", worst(n))
            keys.key("segment.touchpoint", part_key(worst(n), worst(n + 1)))
        for dimension in ("touchpoint", "segment.touchpoint"):
            raw = orjson.dumps(keys.keys_of(dimension))
            assert len(raw) <= group_keys_bytes_bound(cap) < 2 * len(raw) + 100
