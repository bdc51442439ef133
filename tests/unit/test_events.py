"""Every validation rule of the event contract, at its edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cxstream.schemas.events import SCORE_RANGES, CustomerProfile, Feedback, Interaction
from testkit.support import feedback, interaction, profile, to_bytes


def parse_feedback(**overrides: object) -> Feedback:
    return Feedback.model_validate_json(to_bytes(feedback(**overrides)))


@pytest.mark.parametrize(("survey", "score"), [
    ("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5), ("ces", 1), ("ces", 7),
])
def test_scores_at_the_edges_of_each_range_are_accepted(survey: str, score: int) -> None:
    assert parse_feedback(survey=survey, score=score).score == score


@pytest.mark.parametrize(("survey", "score"), [
    ("nps", -1), ("nps", 11), ("csat", 0), ("csat", 6), ("ces", 0), ("ces", 8),
])
def test_scores_just_outside_each_range_are_rejected(survey: str, score: int) -> None:
    with pytest.raises(ValidationError, match=f"outside {survey} range"):
        parse_feedback(survey=survey, score=score)


@pytest.mark.parametrize("score", [9.5, 9.0, "9", True, None])
def test_score_must_be_a_json_integer(score: object) -> None:
    with pytest.raises(ValidationError):
        parse_feedback(score=score)


@given(survey=st.sampled_from(sorted(SCORE_RANGES)), score=st.integers(-1000, 1000))
def test_score_is_accepted_exactly_inside_its_survey_range(survey: str, score: int) -> None:
    low, high = SCORE_RANGES[survey]
    try:
        parse_feedback(survey=survey, score=score)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (low <= score <= high)


def test_unknown_survey_is_rejected() -> None:
    with pytest.raises(ValidationError, match="survey"):
        parse_feedback(survey="NPS")


def test_timestamp_without_offset_is_rejected() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        parse_feedback(occurred_at="2026-11-23T10:00:00")


def test_timestamp_with_offset_is_normalised_to_utc() -> None:
    event = parse_feedback(occurred_at="2026-11-23T12:00:00+02:00")
    assert event.occurred_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() is not None


def test_timestamp_that_is_not_a_date_is_rejected() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        parse_feedback(occurred_at="yesterday")


def test_unknown_extra_fields_are_accepted_ignored_and_named() -> None:
    from cxstream.schemas.parsing import InputKind, parse_input

    raw = to_bytes(feedback(customer_id="c-1", campaign="spring", nested={"a": [1, 2]},
                            comments="typo"))
    unknown: list[str] = []
    event = parse_input(InputKind.FEEDBACK, b"c-1", raw, 65_536, unknown=unknown)
    assert isinstance(event, Feedback) and event.score == 9
    assert sorted(unknown) == ["campaign", "comments", "nested"]
    assert not hasattr(event, "campaign") and event.comment is None
    assert "comments" not in event.model_dump()


def test_a_field_of_another_kind_added_to_an_input_is_not_read_as_its_own() -> None:
    from cxstream.schemas.parsing import InputKind, parse_input

    raw = to_bytes(profile(customer_id="c-1", occurred_at="not a time", score="x"))
    parsed = parse_input(InputKind.CUSTOMER, b"c-1", raw, 65_536)
    assert isinstance(parsed, CustomerProfile)
    assert getattr(parsed, "occurred_at", None) is None  # the fold tells kinds apart so


@pytest.mark.parametrize("missing", ["event_id", "customer_id", "occurred_at", "survey", "score",
                                     "channel", "touchpoint"])
def test_every_required_feedback_field_is_required(missing: str) -> None:
    event = feedback()
    del event[missing]
    with pytest.raises(ValidationError, match=missing):
        Feedback.model_validate_json(to_bytes(event))


@pytest.mark.parametrize(("length", "ok"), [(0, False), (1, True), (128, True), (129, False)])
def test_customer_id_is_1_to_128_characters(length: int, ok: bool) -> None:
    customer_id = "c" * length
    if ok:
        assert parse_feedback(customer_id=customer_id).customer_id == customer_id
    else:
        with pytest.raises(ValidationError, match="customer_id"):
            parse_feedback(customer_id=customer_id)


@pytest.mark.parametrize(("length", "ok"), [(10_000, True), (10_001, False)])
def test_comment_is_at_most_10000_characters(length: int, ok: bool) -> None:
    if ok:
        assert len(parse_feedback(comment="ą" * length).comment or "") == length
    else:
        with pytest.raises(ValidationError, match="comment"):
            parse_feedback(comment="ą" * length)


@pytest.mark.parametrize(("tag", "ok"), [("lt", True), ("en-GB", True), ("zh-Hant-TW", True),
                                         ("e", False), ("en_GB", False), ("", False)])
def test_language_is_a_bcp47_like_tag(tag: str, ok: bool) -> None:
    if ok:
        assert parse_feedback(language=tag).language == tag
    else:
        with pytest.raises(ValidationError, match="language"):
            parse_feedback(language=tag)


def test_comments_in_every_language_survive_unchanged() -> None:
    for text in ["Labai ilgai laukiau", "Kiire ja mugav", "Zwrot był trudny", "Очень долго ждал"]:
        assert parse_feedback(comment=text).comment == text


@pytest.mark.parametrize(("sentiment", "ok"), [(-1, True), (1, True), (-1.01, False),
                                               (1.01, False)])
def test_interaction_sentiment_is_within_minus_one_and_one(sentiment: float, ok: bool) -> None:
    raw = to_bytes(interaction(sentiment=sentiment))
    if ok:
        assert Interaction.model_validate_json(raw).sentiment == sentiment
    else:
        with pytest.raises(ValidationError, match="sentiment"):
            Interaction.model_validate_json(raw)


@pytest.mark.parametrize("outcome", ["success", "failure", "abandoned", "escalated"])
def test_interaction_outcomes_of_the_contract_are_accepted(outcome: str) -> None:
    parsed = Interaction.model_validate_json(to_bytes(interaction(outcome=outcome)))
    assert parsed.outcome == outcome


def test_unknown_outcome_and_negative_wait_are_rejected() -> None:
    with pytest.raises(ValidationError, match="outcome"):
        Interaction.model_validate_json(to_bytes(interaction(outcome="timeout")))
    with pytest.raises(ValidationError, match="wait_seconds"):
        Interaction.model_validate_json(to_bytes(interaction(wait_seconds=-0.1)))


def test_interaction_text_limit_and_optional_fields() -> None:
    event = Interaction.model_validate_json(to_bytes(interaction(wait_seconds=0, amount=-5.5)))
    assert event.wait_seconds == 0 and event.amount == -5.5 and event.outcome is None
    with pytest.raises(ValidationError, match="text"):
        Interaction.model_validate_json(to_bytes(interaction(text="x" * 10_001)))


@pytest.mark.parametrize(("value", "ok"), [(0, True), (1e9, True), (-0.01, False)])
def test_profile_value_is_not_negative(value: float, ok: bool) -> None:
    raw = to_bytes(profile(value=value))
    if ok:
        assert CustomerProfile.model_validate_json(raw).value == value
    else:
        with pytest.raises(ValidationError, match="value"):
            CustomerProfile.model_validate_json(raw)


def test_profile_owner_and_region_are_optional_but_segment_is_not() -> None:
    parsed = CustomerProfile.model_validate_json(to_bytes(profile()))
    assert parsed.owner is None and parsed.region is None
    event = profile()
    del event["segment"]
    with pytest.raises(ValidationError, match="segment"):
        CustomerProfile.model_validate_json(to_bytes(event))


def test_empty_channel_is_rejected() -> None:
    with pytest.raises(ValidationError, match="channel"):
        parse_feedback(channel="")
