"""High value known at once: the local index moves the bands, a profile that puts an
at-risk customer in the band alerts, and so does a fall of a threshold (no Faust)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxstream.alerts.comment_tags import load_tagger
from cxstream.alerts.config import load_rules
from cxstream.alerts.customer_alerts import CustomerAlerts
from cxstream.alerts.reactions import AlertOut, AlertReactions
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import CustomerState, StateRules, experience_is_low
from cxstream.scoring.customer_view import customer_flags
from cxstream.scoring.fold import SourcedEvent
from cxstream.scoring.value_bands import ValueBands, ValueIndex, histogram_of
from cxstream.streams.customers.band_refresh import BandsHolder
from cxstream.streams.customers.revaluation import Revaluator
from testkit.support import feedback, interaction, profile

NOW = datetime.now(UTC).replace(microsecond=0)
RULES = StateRules()
CONFIG = load_rules()


def world(customers: int = 50) -> tuple[ValueIndex, BandsHolder]:
    """``customers`` smb customers of value 100..; the top 20 % from 4100 up."""
    index = ValueIndex()
    for n in range(customers):
        index.update(0, f"base-{n}", "smb", 100.0 + 100 * n, False)
    index.mark_indexed({0, 1})  # as after the recovery of both partitions
    return index, BandsHolder(0.2, "segment", None, index, lambda: {0, 1}, 2)


def alerts_on(bands: BandsHolder) -> CustomerAlerts:
    return CustomerAlerts(CONFIG, load_tagger(),
                          lambda state: customer_flags(state, bands.current, RULES),
                          lambda: NOW)


def reactions_on(index: ValueIndex, bands: BandsHolder) -> AlertReactions:
    def note(partition: int, state: CustomerState) -> None:
        assert state.profile is not None
        index.update(partition, state.customer_id, state.profile.segment, state.profile.value,
                     experience_is_low(state, RULES))
    return AlertReactions(alerts_on(bands), CONFIG, RULES, note)


def item(event: Any, offset: int) -> SourcedEvent:
    return SourcedEvent(event, offset, NOW.timestamp())


def bad_calls(state: CustomerState, customer: str, count: int = 3) -> CustomerState:
    from cxstream.scoring.customer import apply_interaction, remember
    for n in range(count):
        event = Interaction.model_validate(interaction(
            event_id=f"{customer}-call-{n}", customer_id=customer, outcome="escalated",
            occurred_at=(NOW - timedelta(minutes=30 - n)).isoformat()))
        state = remember(apply_interaction(state, event, RULES), "interaction",
                         event.event_id, n, RULES)
    return state


def test_the_bands_count_a_local_profile_at_once() -> None:
    index, bands = world()
    before = bands.current
    assert before.flags("smb", 10_000)["high_value"] is True
    index.update(1, "whale", "smb", 1_000_000, False)
    for n in range(20):
        index.update(1, f"rich-{n}", "smb", 50_000.0 + n, False)
    assert bands.current is not before
    assert bands.current.flags("smb", 10_000)["high_value"] is False


def test_other_workers_shares_count_until_their_partitions_move_here() -> None:
    index, bands = world()
    bands.partition_count = 3
    bands.remote = [{"partitions": [2], "segments": {"smb": {
        str(k): v for k, v in histogram_of([90_000.0] * 100).items()}}}]
    bands._remote_version += 1
    assert bands.current.flags("smb", 10_000)["high_value"] is False  # 100 richer elsewhere
    bands.owned = lambda: {0, 1, 2}  # partition 2 is here now: its old share is dropped
    bands.ownership_changed()
    assert bands.current.flags("smb", 10_000)["high_value"] is True
    assert not bands.complete  # partition 2 is not read into the index yet
    index.mark_indexed({0, 1, 2})
    assert bands.current.flags("smb", 10_000)["high_value"] is True and bands.complete


def test_a_key_accounts_profile_a_second_before_their_detractor_answer_makes_it_critical(
        ) -> None:
    index, bands = world()
    reactions = reactions_on(index, bands)
    empty = CustomerState(customer_id="key-1")
    account = CustomerProfile.model_validate(profile(
        customer_id="key-1", segment="smb", value=250_000.0,
        updated_at=(NOW - timedelta(seconds=1)).isoformat()))
    from cxstream.scoring.customer import apply_feedback, apply_profile
    after_profile, outputs = reactions.on_profile(1, item(account, 0), empty,
                                                  apply_profile(empty, account))
    assert outputs == []  # no experience yet: nothing to alert on
    answer = Feedback.model_validate(feedback(event_id="key-nps", customer_id="key-1",
                                              score=2, occurred_at=NOW.isoformat()))
    after_answer = apply_feedback(after_profile, answer, RULES)
    _, alerts = reactions.customer_alerts.react(answer, after_profile,
                                                after_answer, [])
    assert [alert.severity for _, alert in alerts] == ["critical"]  # one alert, both rules
    assert set(alerts[0][1].reason["rules_fired"]) == {"detractor", "high_value_at_risk"}


def test_a_profile_that_puts_an_at_risk_customer_in_the_band_alerts_once() -> None:
    index, bands = world()
    reactions = reactions_on(index, bands)
    from cxstream.scoring.customer import apply_profile
    state = bad_calls(CustomerState(customer_id="up-1"), "up-1")
    small = CustomerProfile.model_validate(profile(customer_id="up-1", value=150.0,
                                                   updated_at=NOW.isoformat()))
    state, outputs = reactions.on_profile(1, item(small, 5), state,
                                          apply_profile(state, small))
    assert outputs == []  # low experience, low value: dangling, no alert
    upsell = CustomerProfile.model_validate(profile(
        customer_id="up-1", value=80_000.0,
        updated_at=(NOW + timedelta(seconds=1)).isoformat()))
    after, outputs = reactions.on_profile(1, item(upsell, 6), state,
                                          apply_profile(state, upsell))
    alerts = [out.alert for out in outputs if isinstance(out, AlertOut)]
    assert [(a.rule, a.severity) for a in alerts] == [("high_value_at_risk", "critical")]
    _again, outputs = reactions.on_profile(1, item(upsell, 6), after, after)  # read again
    assert outputs == []  # its alert reached Kafka before the state that holds it


class Writer:
    def __init__(self, states: dict[str, CustomerState]) -> None:
        self.states = states
        self.outputs: list[Any] = []
        self.finished = 0

    def load_state(self, customer_id: str) -> CustomerState | None:
        return self.states.get(customer_id)

    def put_state(self, partition: int, customer_id: str, state: CustomerState,
                  outputs: list[Any]) -> None:
        self.states[customer_id] = state
        self.outputs += outputs

    async def finish(self) -> None:
        self.finished += 1


def test_a_fall_of_the_threshold_alerts_for_an_at_risk_customer_now_in_the_band() -> None:
    index, bands = world()
    from cxstream.scoring.customer import apply_profile
    state = bad_calls(CustomerState(customer_id="mid-1"), "mid-1")
    state = apply_profile(state, CustomerProfile.model_validate(profile(
        customer_id="mid-1", value=3_000.0, updated_at=NOW.isoformat())))
    index.update(1, "mid-1", "smb", 3_000.0, True)
    writer = Writer({"mid-1": state})
    revaluator = Revaluator(bands, index, lambda: {0, 1}, writer, alerts_on(bands))
    assert asyncio.run(revaluator.run()) == 0  # not in the band (from about 4,100)
    for n in range(30, 50):  # the richest customers leave: the threshold falls
        index.forget(0, f"base-{n}")
    assert asyncio.run(revaluator.run()) == 1
    assert [(o.alert.rule, o.alert.customer_id) for o in writer.outputs] == [
        ("high_value_at_risk", "mid-1")]
    assert writer.finished == 1
    assert asyncio.run(revaluator.run()) == 0  # once per cause


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 9), st.floats(0, 1e5),
                          st.booleans()), max_size=40),
       st.floats(0.05, 0.5))
def test_newly_high_is_exactly_the_low_customers_whose_flag_turned_true(
        updates: list[tuple[int, int, float, bool]], share: float) -> None:
    index = ValueIndex()
    latest: dict[str, tuple[int, float, bool]] = {}
    before = ValueBands(index.histograms({0, 1}), share)
    for partition, customer, value, low in updates[: len(updates) // 2]:
        index.update(partition, f"c{customer}", "smb", value, low)
        latest[f"c{customer}"] = (partition, value, low)
    before = ValueBands(index.histograms({0, 1}), share)
    for partition, customer, value, low in updates[len(updates) // 2:]:
        cid = f"c{customer}"
        index.update(latest.get(cid, (partition,))[0], cid, "smb", value, low)
        latest[cid] = (latest.get(cid, (partition,))[0], value, low)
    after = ValueBands(index.histograms({0, 1}), share)
    expected = sorted(
        (partition, cid) for cid, (partition, value, low) in latest.items()
        if low and after.flags("smb", value)["high_value"]
        and not before.flags("smb", value)["high_value"])
    assert index.newly_high(before, after, {0, 1}) == expected
    assert index.newly_high(before, after, {0}) == [e for e in expected if e[0] == 0]


def test_no_revaluation_while_partitions_recover() -> None:
    """A rebalance moves a partition here before its customers are read into the index:
    bands of part of the customers must not look like a fall of the thresholds."""
    from cxstream.scoring.customer import apply_profile
    index = ValueIndex()
    state = bad_calls(CustomerState(customer_id="mid-1"), "mid-1")
    state = apply_profile(state, CustomerProfile.model_validate(profile(
        customer_id="mid-1", value=3_000.0, updated_at=NOW.isoformat())))
    index.update(1, "mid-1", "smb", 3_000.0, True)
    index.mark_indexed({1})
    owned = {1}
    bands = BandsHolder(0.2, "segment", None, index, lambda: set(owned), 2)
    rich = [100.0 + 100 * n for n in range(50)]  # partition 0, on another worker
    bands.remote = [{"partitions": [0], "segments": {"smb": histogram_of(rich)}}]
    bands._remote_version += 1
    writer = Writer({"mid-1": state})
    revaluator = Revaluator(bands, index, lambda: set(owned), writer, alerts_on(bands))
    assert asyncio.run(revaluator.run()) == 0  # mid-1 is below the band
    owned.add(0)  # the other worker left: partition 0 is here, still recovering
    bands.ownership_changed()
    assert asyncio.run(revaluator.run()) == 0 and writer.outputs == []
    for n, value in enumerate(rich):  # recovered: the same customers as before
        index.update(0, f"base-{n}", "smb", value, False)
    index.mark_indexed({0, 1})
    assert asyncio.run(revaluator.run()) == 0 and writer.outputs == []


def test_a_customer_alerted_as_a_detractor_who_enters_the_band_gets_no_second_alert() -> None:
    """One unhappy customer, one alert: the open detractor alert takes the at-risk trigger
    in (same id, critical, both rules fired)."""
    from cxstream.scoring.customer import apply_feedback, apply_profile
    index, bands = world()
    alerts = alerts_on(bands)
    state = apply_profile(CustomerState(customer_id="mid-2"), CustomerProfile.model_validate(
        profile(customer_id="mid-2", value=3_000.0, updated_at=NOW.isoformat())))
    answer = Feedback.model_validate(feedback(event_id="mid-2-nps", customer_id="mid-2",
                                              score=2, occurred_at=NOW.isoformat()))
    after = apply_feedback(state, answer, RULES)
    state, raised = alerts.react(answer, state, after, [])
    assert [(s, a.rule, a.severity) for s, a in raised] == [("new", "detractor", "warning")]
    index.update(1, "mid-2", "smb", 3_000.0, True)
    writer = Writer({"mid-2": state})
    revaluator = Revaluator(bands, index, lambda: {0, 1}, writer, alerts)
    for n in range(30, 50):  # the threshold falls below mid-2's value
        index.forget(0, f"base-{n}")
    assert asyncio.run(revaluator.run()) == 1
    [out] = writer.outputs
    assert (out.status, out.alert.alert_id) == ("folded", raised[0][1].alert_id)
    assert out.alert.severity == "critical" and out.alert.occurrences == 2
    assert "high_value_at_risk" in out.alert.reason["rules_fired"]
