"""The prediction model's part of the fold (alerts.customer_core), made where it is read,
as of the event read (docs/predictions.md, "Where it is computed"):

    before each answer        measured against the answer (scoring.prediction_live)
    for the customer rules    an event that may alert, a profile that may (as of the
                              customer's newest event): kept in the state they read
    for the priorities        an event with signals: silent customers predicted at risk
    for the survey desk       every interaction, only with surveys.predicted_first

No prediction is made per event for a state nobody reads: a stored score per changed
customer and batch cost 6 to 9 µs per event (bench.prediction --cost), the budget is 3.
The API finds a customer's prediction when asked, as of their newest event.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from cxstream.schemas.events import Feedback, Interaction
from cxstream.scoring.plain_customer import Customer, to_us
from cxstream.scoring.prediction import Predictor, prediction_json


class CorePredictions:
    """One worker's predictions, with the seconds they take per batch."""

    __slots__ = ("_scored", "in_rules", "made", "predictor", "seconds")

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        #: seconds of the batch's predictions so far: all, and the part inside the rules
        self.seconds = self.in_rules = 0.0
        self._scored: Any = None  # the event the rules' prediction was made for
        #: purpose -> [predictions made, seconds], since start (bench.prediction --cost)
        self.made: dict[str, list[float]] = {
            purpose: [0, 0.0] for purpose in ("answers", "rules", "after", "reasons")}

    def _spent(self, purpose: str, began: float) -> float:
        spent = perf_counter() - began
        self.seconds += spent
        made = self.made[purpose]
        made[0] += 1
        made[1] += spent
        return spent

    def before_answer(self, state: Customer, event: Feedback) -> tuple[int, float, bool]:
        """The prediction of an answer from the state before it, and what was answered."""
        began = perf_counter()
        at = to_us(event.occurred_at)
        predicted = (at, self.predictor.probability(state, at, event.survey),
                     self.predictor.thresholds.is_low(event.survey, event.score))
        self._spent("answers", began)
        return predicted

    def for_rules(self, state: Customer, event: Feedback | Interaction) -> None:
        """The prediction as of ``event``, kept in the state the rules read."""
        began = perf_counter()
        state.prediction = self.predictor.predict(state, to_us(event.occurred_at))
        self._scored = event
        self.in_rules += self._spent("rules", began)

    def for_profile(self, state: Customer) -> None:
        """The prediction as of the customer's newest event, with the value a new profile
        just gave them, kept in the state the profile rules read."""
        if state.last_event_at is not None:
            began = perf_counter()
            state.prediction = self.predictor.predict(state, state.last_event_at)
            self._scored = None
            self.in_rules += self._spent("rules", began)

    def after(self, state: Customer, event: Feedback | Interaction) -> float:
        """The probability just after ``event`` (the rules' one when they read it)."""
        if self._scored is not event:
            began = perf_counter()
            state.prediction = self.predictor.predict(state, to_us(event.occurred_at))
            self._spent("after", began)
        assert state.prediction is not None
        return float(state.prediction[0])

    def explain(self, state: Customer, alerts: list[Any]) -> None:
        """The prediction's reasons in the alerts an event raised (only those)."""
        assert state.prediction is not None
        began = perf_counter()
        kept = state.prediction
        explained = prediction_json(self.predictor.explained(state, kept[2], kept[0]))
        for alert in alerts:
            if alert.context.get("prediction") is not None:
                alert.context["prediction"] = explained
        self.in_rules += self._spent("reasons", began)

    def batch_done(self) -> tuple[float, float]:
        """(seconds of the batch's predictions, the part inside the rules' time); the
        next batch counts anew."""
        spent = (self.seconds, self.in_rules)
        self.seconds = self.in_rules = 0.0
        self._scored = None
        return spent
