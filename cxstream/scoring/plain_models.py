"""A plain customer (scoring.plain_customer) as the contract's model and back: what the
rules, the API and the tests read of a state (``to_model``), and a state from a model
(``from_model``, for a write that starts from one)."""

from __future__ import annotations

from typing import Any

from cxstream.scoring.customer import CustomerState, InteractionRecord, Profile, ScoreRecord
from cxstream.scoring.plain_customer import (
    INTERACTIONS,
    SCORES,
    Customer,
    from_us,
    to_us,
)
from cxstream.scoring.prediction import prediction_json


def to_model(state: Customer, with_seen: bool = False) -> CustomerState:
    """The state as the contract's model (``seen`` read from the history only with
    ``with_seen``: neither the rules nor the API show it)."""
    profile = state.profile
    return CustomerState.model_construct(
        customer_id=state.customer_id,
        profile=None if profile is None else Profile.model_construct(
            segment=profile[0], value=profile[1], owner=profile[2], region=profile[3],
            updated_at=from_us(profile[4])),
        last_scores={survey: _score_model(state.last_record(survey))
                     for survey in state.last_scores},
        recent_scores=tuple(_score_model(r) for r in state.records(SCORES)),
        recent_interactions=tuple(_interaction_model(r)
                                  for r in state.records(INTERACTIONS)),
        negative_signals=tuple(from_us(at) for at in state.signals),
        seen=state.seen() if with_seen else {}, applied_up_to=dict(state.applied_up_to),
        last_event_at=None if state.last_event_at is None else from_us(state.last_event_at),
        counted={name: dict(per) for name, per in state.counted.items()},
        alerts=dict(state.alerts), prediction=prediction_json(state.prediction))


def from_model(model: CustomerState, kept_ids: int) -> Customer:
    """A plain state with all of its history to write (``kept_ids``: the ring's size)."""
    state = Customer(model.customer_id)
    if model.profile is not None:
        p = model.profile
        state.profile = (p.segment, p.value, p.owner, p.region, to_us(p.updated_at))
    for survey, r in model.last_scores.items():
        state.last_scores[survey] = (r.score, to_us(r.at), r.event_id)
        state.write(f"l{survey}", _score_record(r))
    for record in model.recent_scores:
        state.add_record(SCORES, _score_record(record), len(model.recent_scores))
    for interaction in model.recent_interactions:
        state.add_record(INTERACTIONS, _interaction_record(interaction),
                         len(model.recent_interactions))
    state.signals = [to_us(at) for at in model.negative_signals]
    for name, offset in list(model.seen.items())[-kept_ids:]:
        kind, event_id = name.split(":", 1)
        state.remember(kind, event_id, offset, kept_ids)
    state.applied_up_to = dict(model.applied_up_to)
    state.last_event_at = None if model.last_event_at is None else to_us(model.last_event_at)
    state.counted = {name: dict(per) for name, per in model.counted.items()}
    state.alerts = dict(model.alerts)
    return state


def _score_model(r: tuple[Any, ...]) -> ScoreRecord:
    return ScoreRecord.model_construct(
        event_id=r[0], survey=r[1], score=r[2], at=from_us(r[3]), channel=r[4],
        touchpoint=r[5], comment=r[6], language=r[7])


def _interaction_model(r: tuple[Any, ...]) -> InteractionRecord:
    return InteractionRecord.model_construct(
        event_id=r[0], at=from_us(r[1]), channel=r[2], touchpoint=r[3], outcome=r[4],
        wait_seconds=r[5], sentiment=r[6], text=r[7], negative=r[8])


def _score_record(r: ScoreRecord) -> tuple[Any, ...]:
    return (r.event_id, r.survey, r.score, to_us(r.at), r.channel, r.touchpoint, r.comment,
            r.language)


def _interaction_record(r: InteractionRecord) -> tuple[Any, ...]:
    return (r.event_id, to_us(r.at), r.channel, r.touchpoint, r.outcome, r.wait_seconds,
            r.sentiment, r.text, r.negative)


# -- bytes ------------------------------------------------------------------------------
