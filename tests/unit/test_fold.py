"""fold_batch: duplicates, replays, lateness, segments and windows, without Faust."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import CustomerState, StateRules
from cxstream.scoring.fold import (
    FoldRules,
    PartialTally,
    SourcedEvent,
    expired_partial_keys,
    partial_key,
    watermark_key,
)
from cxstream.scoring.groups import part_key
from cxstream.scoring.windows import Watermark, window_specs, window_start
from testkit.reference.fold import FoldResult, fold_batch
from testkit.support import feedback, interaction, profile

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = FoldRules(state=StateRules(), conventions=Conventions(), windows=window_specs(7),
                  allowed_lateness_seconds=3_600, max_clock_skew_seconds=300)


class Store:
    """Tables as dicts; applies results the way the agent writes them."""

    def __init__(self) -> None:
        self.states: dict[str, CustomerState] = {}
        self.partials: dict[str, PartialTally] = {}
        self.watermark = Watermark()

    def fold(self, items: list[SourcedEvent], rules: FoldRules = RULES) -> FoldResult:
        result = fold_batch(0, items, self.states.get, self.partials.get, self.watermark, rules)
        self.partials.update(result.partials)
        self.states.update(result.states)
        self.watermark = result.watermark
        return result

    def day_tally(self, dimension: str, key: str, minutes: float = 0) -> Any:
        start = window_start((T0 + timedelta(minutes=minutes)).timestamp(), 86_400)
        partial = self.partials.get(partial_key(0, dimension, "day", start, key))
        return None if partial is None else partial.tally


def answer(offset: int, minutes: float = 0, **overrides: Any) -> SourcedEvent:
    at = T0 + timedelta(minutes=minutes)
    event = Feedback.model_validate(feedback(occurred_at=at.isoformat(), **overrides))
    return SourcedEvent(event, offset, at.timestamp() + 1)


def test_answers_count_in_segment_channel_touchpoint_and_stage_of_every_window() -> None:
    store = Store()
    profile_event = CustomerProfile.model_validate(profile(segment="enterprise",
                                                           updated_at=T0.isoformat()))
    store.fold([SourcedEvent(profile_event, 0, T0.timestamp()),
                answer(0, score=10), answer(1, event_id="f-2", score=3)])
    tally = store.day_tally("segment", "enterprise")
    assert (tally.promoters, tally.detractors) == (1, 1)
    assert store.day_tally("channel", "web").nps_n == 2
    assert store.day_tally("touchpoint", "checkout").nps_n == 2
    assert store.day_tally("stage", "purchase").nps_n == 2  # checkout's journey stage
    assert store.day_tally("agent", "a-1") is None  # no handled_by: no agent
    # 4 dimensions x 3 window sizes, and in the day window the groups by their parts:
    # segment by touchpoint, channel and stage, channel by touchpoint and stage, stage by
    # touchpoint and channel, touchpoint by channel
    assert len(store.partials) == 4 * 3 + 8
    part = store.day_tally("segment.touchpoint", part_key("enterprise", "checkout"))
    assert (part.promoters, part.detractors) == (1, 1)
    assert store.day_tally("stage.channel", part_key("purchase", "web")).nps_n == 2


def test_an_answer_handled_by_an_agent_counts_for_the_agent_too() -> None:
    store = Store()
    store.fold([answer(0, score=9, handled_by="a-1"), answer(1, event_id="f-2", score=2,
                                                           handled_by="a-2", survey="csat",
                                                           touchpoint="returns")])
    assert store.day_tally("agent", "a-1").promoters == 1
    assert store.day_tally("agent", "a-2").csat_n == 1
    assert store.day_tally("stage", "support").csat_n == 1
    # one segment and channel, two touchpoints, stages and agents, in 3 window sizes
    # and in the day window 9 part groups per answer, segment by channel in common
    assert len(store.partials) == (1 + 1 + 2 + 2 + 2) * 3 + 9 + 8


def test_answers_before_any_profile_count_under_unknown() -> None:
    store = Store()
    store.fold([answer(0)])
    assert store.day_tally("segment", "unknown").nps_n == 1


def test_a_resent_event_id_changes_nothing() -> None:
    store = Store()
    store.fold([answer(0, score=2)])
    before = (dict(store.partials), dict(store.states))
    result = store.fold([answer(7, score=2)])  # same event_id, new offset
    assert result.outcomes["feedback", "duplicate"] == 1
    assert (store.partials, store.states) == before


def test_a_replay_after_a_crash_counts_once_even_if_only_some_writes_landed() -> None:
    store = Store()
    store.fold([answer(0, score=2)])
    tallies_after_first = dict(store.partials)
    store.fold([answer(1, event_id="f-2", score=9)])
    complete = dict(store.partials)
    # crash: the customer state of offset 1 landed, its tallies did not; both are redelivered
    store.partials = tallies_after_first
    result = store.fold([answer(0, score=2), answer(1, event_id="f-2", score=9)])
    assert result.outcomes["feedback", "replayed"] == 2
    assert store.partials == complete


def test_late_answers_update_the_customer_but_not_the_windows() -> None:
    store = Store()
    store.fold([answer(0, minutes=180, event_id="new", score=10)])
    result = store.fold([answer(1, minutes=0, event_id="old", score=0)])  # 3 h late > 1 h
    assert result.outcomes["feedback", "late"] == 1
    assert store.day_tally("segment", "unknown").nps_n == 1
    assert [r.event_id for r in store.states["c-1"].recent_scores] == ["old", "new"]


def test_answers_within_the_allowed_lateness_still_count() -> None:
    store = Store()
    store.fold([answer(0, minutes=59, event_id="a"), answer(1, minutes=0, event_id="b")])
    assert store.day_tally("segment", "unknown").nps_n == 2


def test_latest_per_customer_counts_one_answer_per_customer_and_window() -> None:
    rules = RULES.model_copy(update={"conventions": Conventions(
        score_basis="latest_per_customer")})
    store = Store()
    store.fold([answer(0, minutes=0, event_id="a", score=2),
                answer(1, minutes=10, event_id="b", score=10),
                answer(2, minutes=5, event_id="c", score=0)], rules)  # older than b
    tally = store.day_tally("segment", "unknown")
    assert (tally.promoters, tally.detractors) == (1, 0)


def test_interactions_update_state_and_never_the_tallies() -> None:
    store = Store()
    event = Interaction.model_validate(interaction(occurred_at=T0.isoformat(),
                                                   outcome="failure"))
    result = store.fold([SourcedEvent(event, 0, T0.timestamp())])
    assert result.outcomes["interaction", "applied"] == 1
    assert store.partials == {}
    assert store.states["c-1"].recent_interactions[0].negative


def test_watermark_advances_and_old_windows_expire() -> None:
    store = Store()
    store.fold([answer(0, minutes=0, event_id="a")])
    store.fold([answer(1, minutes=60 * 24 * 70, event_id="b")])  # 70 days later
    expired = expired_partial_keys(list(store.partials), store.watermark, RULES.windows)
    assert expired and all("|hour|" in k or "|day|" in k or "|7d|" in k for k in expired)
    assert watermark_key(0) not in expired
    assert not any(str(window_start((T0 + timedelta(days=70)).timestamp(), 3_600)) in k
                   for k in expired)


def test_reading_the_topics_again_from_the_start_changes_no_state_and_no_tally() -> None:
    """More events per customer than ids are remembered: the offset high-water mark still
    tells that they were applied."""
    rules = FoldRules(state=StateRules(seen_event_ids_kept=10), conventions=Conventions(),
                      windows=window_specs(7), allowed_lateness_seconds=30 * 86_400,
                      max_clock_skew_seconds=300)
    store = Store()
    events = [answer(n, minutes=n, event_id=f"f-{n}", score=n % 11) for n in range(40)]
    calls = [SourcedEvent(Interaction.model_validate(interaction(
        event_id=f"i-{n}", outcome="failure",
        occurred_at=(T0 + timedelta(minutes=n)).isoformat())), n, T0.timestamp())
        for n in range(30)]
    for batch in (events[:20], events[20:], calls):
        store.fold(batch, rules)
    states, partials = dict(store.states), dict(store.partials)
    for _ in range(3):  # any number of re-reads, in any batch sizes
        result = store.fold(events + calls, rules)
        assert result.outcomes[("feedback", "duplicate")] == 40  # ids forgotten: all old
        assert result.outcomes[("interaction", "duplicate")] == 20  # 10 remembered: replays
    assert store.states == states and store.partials == partials


def test_group_keys_beyond_the_cap_count_under_other_in_stream_and_recomputation() -> None:
    from cxstream.schemas.parsing import InputKind
    from cxstream.scoring.groups import OTHER_KEY, GroupKeys
    from cxstream.scoring.recompute import RawInput, recompute
    from testkit.support import to_bytes

    rules = FoldRules(state=StateRules(), conventions=Conventions(), windows=window_specs(7),
                      allowed_lateness_seconds=30 * 86_400, max_clock_skew_seconds=300,
                      max_group_keys=3)
    raw = [feedback(event_id=f"f-{n}", customer_id=f"c{n}", touchpoint=f"tp-{n % 7}",
                    occurred_at=(T0 + timedelta(minutes=n)).isoformat()) for n in range(21)]
    store = Store()
    keys = GroupKeys(3)
    for n, event in enumerate(raw):
        result = fold_batch(0, [SourcedEvent(Feedback.model_validate(event), n,
                                             T0.timestamp() + 3_600)],
                            store.states.get, store.partials.get, store.watermark, rules,
                            keys=keys)
        store.partials.update(result.partials)
        store.states.update(result.states)
        store.watermark = result.watermark
    touchpoints = {key.split("|")[4] for key in store.partials if "|touchpoint|day|" in key}
    assert touchpoints == {"tp-0", "tp-1", "tp-2", OTHER_KEY}
    assert {dim: n for dim, n in keys.overflow.items() if "." not in dim} == {"touchpoint": 12}
    # a part dimension admits 1 key at a cap of 3: the rest count in the group's (other)
    assert keys.overflow["segment.touchpoint"] == 21 - 3
    assert store.day_tally("segment.touchpoint", part_key("unknown", OTHER_KEY)).nps_n == 18
    assert store.day_tally("touchpoint", OTHER_KEY).nps_n == 12
    batch = recompute([RawInput("fb", 0, n, T0.timestamp() + 3_600, f"c{n}".encode(),
                                to_bytes(event)) for n, event in enumerate(raw)],
                      {"fb": InputKind.FEEDBACK}, 65_536, rules)
    assert {slot[3] for slot in batch if slot[0] == "touchpoint"} == touchpoints
    start = window_start(T0.timestamp(), 86_400)
    assert batch[("touchpoint", "day", start, OTHER_KEY)].nps_n == 12
    streamed = {}
    for raw_key, partial in store.partials.items():
        _, dimension, window, slot_start, key = raw_key.split("|", 4)
        streamed[(dimension, window, int(slot_start), key)] = partial.tally
    assert streamed == batch  # the part groups too


def test_group_keys_remembered_across_batches_keep_their_order() -> None:
    from cxstream.scoring.groups import OTHER_KEY, GroupKeys

    keys = GroupKeys(2)
    assert [keys.key("channel", k) for k in ("web", "app", "web", "phone")] == [
        "web", "app", "web", OTHER_KEY]
    again = GroupKeys(2, {"channel": keys.keys_of("channel")})
    assert again.key("phone", "x") == "x" and again.key("channel", "phone") == OTHER_KEY
    assert again.changed == {"phone"}
