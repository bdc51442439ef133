"""Customer state folds, bounds, signals and quadrants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.scoring.customer import (
    CustomerState,
    StateRules,
    apply_feedback,
    apply_interaction,
    apply_profile,
    is_negative,
    low_score_reasons,
    negative_signal_count,
    quadrant,
    remember,
)
from testkit.support import feedback, interaction, profile

RULES = StateRules()
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def fb(minutes: float = 0, **overrides: object) -> Feedback:
    return Feedback.model_validate(
        feedback(occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(), **overrides))


def ix(minutes: float = 0, **overrides: object) -> Interaction:
    return Interaction.model_validate(
        interaction(occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(), **overrides))


def pr(minutes: float = 0, **overrides: object) -> CustomerProfile:
    return CustomerProfile.model_validate(
        profile(updated_at=(T0 + timedelta(minutes=minutes)).isoformat(), **overrides))


EMPTY = CustomerState(customer_id="c-1")


def test_latest_profile_wins_even_when_it_arrives_first() -> None:
    state = apply_profile(apply_profile(EMPTY, pr(10, segment="enterprise")), pr(0, segment="smb"))
    assert state.profile is not None and state.profile.segment == "enterprise"
    state = apply_profile(state, pr(20, segment="consumer", value=5))
    assert state.profile is not None and state.profile.segment == "consumer"


def test_events_before_the_profile_are_kept_and_the_profile_completes_them() -> None:
    state = apply_feedback(EMPTY, fb(score=3), RULES)
    assert state.profile is None and state.last_scores["nps"].score == 3
    state = apply_profile(state, pr(5, segment="enterprise"))
    assert state.profile is not None and state.last_scores["nps"].score == 3


def test_last_score_per_survey_is_the_latest_by_event_time() -> None:
    state = apply_feedback(EMPTY, fb(10, score=9), RULES)
    state = apply_feedback(state, fb(0, event_id="f-old", score=2), RULES)  # arrives late
    assert state.last_scores["nps"].score == 9
    assert [r.score for r in state.recent_scores] == [2, 9]  # event-time order


@given(st.integers(1, 60))
def test_recent_lists_and_seen_ids_are_bounded(count: int) -> None:
    rules = StateRules(recent_interactions_kept=5, recent_scores_kept=4, seen_event_ids_kept=10)
    state = EMPTY
    for i in range(count):
        state = apply_interaction(state, ix(i, event_id=f"i{i}", outcome="failure"), rules)
        state = apply_feedback(state, fb(i, event_id=f"f{i}"), rules)
        state = remember(state, "feedback", f"f{i}", i, rules)
    assert len(state.recent_interactions) == min(count, 5)
    assert len(state.recent_scores) == min(count, 4)
    assert len(state.seen) == min(count, 10)
    assert state.seen_offset("feedback", f"f{count - 1}") == count - 1


def test_negative_signals_are_failures_long_waits_and_negative_sentiment() -> None:
    assert is_negative(ix(outcome="failure"), RULES)
    assert is_negative(ix(outcome="abandoned"), RULES)
    assert is_negative(ix(outcome="escalated"), RULES)
    assert not is_negative(ix(outcome="success"), RULES)
    assert is_negative(ix(wait_seconds=600), RULES) and not is_negative(ix(wait_seconds=599), RULES)
    assert is_negative(ix(sentiment=-0.3), RULES) and not is_negative(ix(sentiment=-0.29), RULES)


def test_negative_signals_count_only_within_the_window() -> None:
    state = apply_interaction(EMPTY, ix(0, event_id="a", outcome="failure"), RULES)
    state = apply_interaction(state, ix(60, event_id="b", outcome="failure"), RULES)
    assert negative_signal_count(state, RULES) == 2
    later = apply_interaction(state, ix(72 * 60 + 30, event_id="c", outcome="success"), RULES)
    assert negative_signal_count(later, RULES) == 1  # the first one has left the 72 h window


def test_quadrants_from_score_and_value() -> None:
    detractor = apply_feedback(EMPTY, fb(score=4), RULES)
    promoter = apply_feedback(EMPTY, fb(score=10), RULES)
    assert quadrant(detractor, True, RULES) == "at-risk"
    assert quadrant(detractor, False, RULES) == "dangling"
    assert quadrant(promoter, True, RULES) == "exemplary"
    assert quadrant(promoter, False, RULES) == "growth"
    assert quadrant(promoter, None, RULES) is None  # value unknown
    assert quadrant(EMPTY, True, RULES) is None  # nothing known of the experience


def test_a_run_of_bad_interactions_makes_a_silent_customer_low() -> None:
    state = EMPTY
    for i in range(3):
        state = apply_interaction(state, ix(i, event_id=f"i{i}", outcome="escalated"), RULES)
    assert low_score_reasons(state, RULES) == ["3 negative interactions in 72 h"]
    assert quadrant(state, True, RULES) == "at-risk"
    two = apply_interaction(EMPTY, ix(0, event_id="x", outcome="failure"), RULES)
    assert quadrant(two, True, RULES) == "exemplary"


def test_low_score_thresholds_per_survey() -> None:
    assert low_score_reasons(apply_feedback(EMPTY, fb(score=6), RULES), RULES)
    assert not low_score_reasons(apply_feedback(EMPTY, fb(score=7), RULES), RULES)
    csat = apply_feedback(EMPTY, fb(survey="csat", score=2), RULES)
    assert low_score_reasons(csat, RULES) == ["latest CSAT 2 ≤ 2"]
    ces = apply_feedback(EMPTY, fb(survey="ces", score=4), RULES)
    assert not low_score_reasons(ces, RULES)


def test_old_scores_stop_counting_after_the_recency_period() -> None:
    state = apply_feedback(EMPTY, fb(0, score=2), RULES)
    state = apply_interaction(state, ix(91 * 24 * 60, outcome="success"), RULES)
    assert low_score_reasons(state, RULES) == []


@given(st.lists(st.integers(0, 200), max_size=30), st.integers(0, 200),
       st.floats(1, 100))
def test_negative_signals_in_the_window_are_counted_whatever_their_order(
        hours_ago: list[int], last_hours_ago: int, window_hours: float) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    signals = tuple(now - timedelta(hours=h) for h in hours_ago)  # any order
    last = now - timedelta(hours=last_hours_ago)
    state = CustomerState(customer_id="c", negative_signals=signals, last_event_at=last)
    rules = StateRules(signal_window_hours=window_hours)
    horizon = last - timedelta(hours=window_hours)
    assert negative_signal_count(state, rules) == sum(1 for at in signals if at >= horizon)


@given(st.lists(st.integers(0, 50), max_size=40), st.integers(1, 10))
def test_recent_answers_are_the_latest_in_time_order_whatever_the_arrival_order(
        minutes: list[int], kept: int) -> None:
    rules = StateRules(recent_scores_kept=kept)
    state = CustomerState(customer_id="c1")
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for n, minute in enumerate(minutes):
        event = Feedback.model_validate(feedback(
            event_id=f"e{n}", score=n % 11, occurred_at=(base + timedelta(minutes=minute))
            .isoformat()))
        state = apply_feedback(state, event, rules)
    # the reference: a stable sort by time of everything, the last ``kept``
    arrivals = sorted(enumerate(minutes), key=lambda pair: pair[1])[-kept:]
    assert [record.event_id for record in state.recent_scores] == [
        f"e{n}" for n, _ in arrivals]
