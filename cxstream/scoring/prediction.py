"""The prediction model as the worker runs it: a versioned model file, read and checked
once, and a probability with its reasons from one feature row (docs/predictions.md).

Shape: a row of scoring.features -> (probability of a low answer, top reasons). The file
holds a logistic regression on the raw features (the training's standardisation folded
into the weights) and an isotonic calibration as a table of points; scoring is a dot
product and one interpolation, in plain Python: numpy per row costs more than the sum
itself at these sizes, and the worker needs neither numpy nor scikit-learn.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cxstream.scoring.features import (
    FEATURE_VERSION,
    Thresholds,
    Vocabulary,
    feature_names,
    feature_row,
)
from cxstream.scoring.journey import Journey
from cxstream.scoring.plain_customer import Customer, from_us
from cxstream.scoring.scorer import Scorer

MODEL_FORMAT = 1
REASONS_KEPT = 3
#: features that say what is predicted, not who the customer is: never a reason
CONTEXT = frozenset({"survey_csat", "survey_ces"})


class ModelMismatch(ValueError):
    """A model file this version cannot run (its message says what differs)."""


class ModelFile(BaseModel):
    """The model file's contents (JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int
    feature_version: int
    features: list[str] = Field(min_length=1)
    vocabulary: dict[str, list[str]]
    weights: list[float]
    intercept: float
    #: the training rows' mean of each feature: a reason is how far a customer is from it
    means: list[float]
    #: isotonic calibration: the linear model's probability -> the calibrated one
    calibration_x: list[float] = Field(min_length=2)
    calibration_y: list[float] = Field(min_length=2)
    #: the time-split evaluation (AUC, Brier score, calibration by decile, sizes)
    evaluation: dict[str, Any]
    trained: dict[str, Any]

    @model_validator(mode="after")
    def _same_lengths(self) -> ModelFile:
        if not len(self.weights) == len(self.means) == len(self.features):
            raise ValueError("weights, means and features differ in length")
        if len(self.calibration_x) != len(self.calibration_y):
            raise ValueError("calibration_x and calibration_y differ in length")
        return self

    def version(self) -> str:
        """The content's hash: two files with one version are one model."""
        body = self.model_dump(exclude={"trained", "evaluation"})
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


class Model:
    """A checked model file, ready to score rows."""

    __slots__ = ("_indicators", "calibration_x", "calibration_y", "evaluation", "file",
                 "intercept", "means", "names", "version", "vocabulary", "weights")

    def __init__(self, file: ModelFile) -> None:
        check_features(file)
        self.file = file
        self.version = file.version()
        self.names = tuple(file.features)
        self.weights = tuple(file.weights)
        self.means = tuple(file.means)
        self.intercept = file.intercept
        self.calibration_x = tuple(file.calibration_x)
        self.calibration_y = tuple(file.calibration_y)
        self.vocabulary = vocabulary_of(file)
        self.evaluation = file.evaluation
        #: None: never a reason (CONTEXT); True: an indicator, a reason only when it holds
        self._indicators = tuple(None if name in CONTEXT else is_indicator(name)
                                 for name in self.names)

    @classmethod
    def load(cls, path: Path) -> Model:
        """The model at ``path``; ModelMismatch if this version cannot run it."""
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ModelMismatch(f"{path}: cannot read a model file: {exc}") from exc
        if isinstance(raw, dict) and raw.get("format") != MODEL_FORMAT:
            raise ModelMismatch(f"{path}: model file format {raw.get('format')!r}, this "
                                f"version reads format {MODEL_FORMAT}")
        if isinstance(raw, dict) and raw.get("feature_version", FEATURE_VERSION) != \
                FEATURE_VERSION:  # said first: such a file may lack fields of this version
            raise ModelMismatch(f"{path}: {_other_version(raw['feature_version'])}")
        try:
            return cls(ModelFile.model_validate(raw))
        except ModelMismatch as exc:
            raise ModelMismatch(f"{path}: {exc}") from exc
        except ValueError as exc:
            raise ModelMismatch(f"{path}: not a model file: {exc}") from exc

    def probability(self, row: list[float]) -> float:
        """The calibrated probability of a low answer."""
        z = self.intercept
        for weight, x in zip(self.weights, row, strict=True):
            z += weight * x
        return calibrated(self.calibration_x, self.calibration_y, _sigmoid(z))

    def reasons(self, row: list[float], kept: int = REASONS_KEPT) -> list[tuple[str, float]]:
        """The features that raise this customer's risk most against the average one:
        (feature, its value), largest contribution first, positive ones only; an
        indicator (a segment, a stage, whether they answered) only when it holds: "not
        at the purchase stage" says nothing a person can act on."""
        pushes = [(weight * (x - mean), name, x) for name, weight, mean, x, indicator
                  in zip(self.names, self.weights, self.means, row, self._indicators,
                         strict=True)
                  if x != mean and weight * (x - mean) > 0 and indicator is not None
                  and (x or not indicator)]
        return [(name, x) for _, name, x in heapq.nlargest(kept, pushes)]


def is_indicator(name: str) -> bool:
    return (":" in name and not name.startswith("channel_share:")) or name.startswith(
        ("has_", "survey_")) or name.endswith("_low")


def _other_version(found: Any) -> str:
    return (f"the model's features are version {found}, this version builds version "
            f"{FEATURE_VERSION}: retrain it (cxstream model train)")


def check_features(file: ModelFile) -> None:
    """ModelMismatch unless the file's features are the ones this version builds."""
    if file.feature_version != FEATURE_VERSION:
        raise ModelMismatch(_other_version(file.feature_version))
    expected = feature_names(vocabulary_of(file))
    if file.features != expected:
        differ = sorted(set(file.features) ^ set(expected)) or ["their order"]
        raise ModelMismatch("the model's features differ from the ones this version "
                            f"builds ({', '.join(differ[:5])}): retrain it")


def vocabulary_of(file: ModelFile) -> Vocabulary:
    vocabulary = file.vocabulary
    return Vocabulary(tuple(vocabulary.get("segments", ())),
                      tuple(vocabulary.get("channels", ())),
                      tuple(vocabulary.get("stages", ())))


def calibrated(xs: tuple[float, ...] | list[float], ys: tuple[float, ...] | list[float],
               p: float) -> float:
    """The piecewise-linear map through (xs, ys) at ``p`` (flat outside): isotonic
    regression's prediction."""
    if p <= xs[0]:
        return ys[0]
    if p >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, p)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (p - x0) / (x1 - x0)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"  # a bounded text


#: feature -> its reason as a manager reads it, from (value, value rounded)
_TEXTS: dict[str, Callable[[float, int], str]] = {
    "failures_7d": lambda v, n: f"{n} failed interactions in 7 days",
    "abandoned_7d": lambda v, n: f"{n} abandoned interactions in 7 days",
    "escalated_7d": lambda v, n: f"{n} escalations in 7 days",
    "long_waits_7d": lambda v, n: f"{n} long waits in 7 days",
    "negative_posts_7d": lambda v, n: f"{n} negative posts in 7 days",
    "interactions_7d": lambda v, n: f"{n} interactions in 7 days",
    "negative_30d": lambda v, n: f"{n} bad interactions in 30 days",
    "interactions_30d": lambda v, n: f"{n} interactions in 30 days",
    "negative_share_30d": lambda v, n: f"{v:.0%} of interactions bad in 30 days",
    "days_since_negative": lambda v, n: f"last bad interaction {n} days ago",
    "nps_last": lambda v, n: f"last NPS answer {round(v * 10)}",
    "nps_low": lambda v, n: "last NPS answer low",
    "csat_low": lambda v, n: "last CSAT answer low",
    "ces_low": lambda v, n: "last CES answer hard",
    "has_nps": lambda v, n: "has answered NPS",
    "has_csat": lambda v, n: "has answered CSAT",
    "has_ces": lambda v, n: "has answered CES",
    "days_since_answer": lambda v, n: f"no answer for {n} days",
    "log_value": lambda v, n: f"value {_amount(math.expm1(min(v, 700.0)))}",
}


def reason_text(name: str, value: float) -> str:
    """A reason as a manager reads it."""
    text = _TEXTS.get(name)
    if text is not None:
        return text(value, round(value))
    kind, _, what = name.partition(":")
    if kind == "channel_share":
        return f"{value:.0%} of interactions by {what}"
    if kind == "stage":
        return f"latest interaction at {what}"
    if kind == "segment":
        return f"segment {what}"
    return name


class Predictor:
    """A model with what its rows need: the journey and what counts as bad."""

    __slots__ = ("journey", "model", "scorer", "thresholds")

    def __init__(self, model: Model, journey: Journey, thresholds: Thresholds) -> None:
        self.model = model
        self.journey = journey
        self.thresholds = thresholds
        self.scorer = Scorer(model.names, model.weights, model.intercept, journey,
                             thresholds)

    def row(self, state: Customer, at_us: int, survey: str = "nps") -> list[float]:
        profile = state.profile
        return feature_row(state.ledger, state.last_scores,
                           None if profile is None else profile[1],
                           None if profile is None else profile[0], at_us, survey,
                           self.model.vocabulary, self.journey, self.thresholds)

    def probability(self, state: Customer, at_us: int, survey: str) -> float:
        """Before an answer to ``survey`` at ``at_us``: how likely it is low (the row's
        probability, scored in one pass: scoring.scorer)."""
        profile = state.profile
        z = self.scorer.linear(state.ledger, state.last_scores,
                               None if profile is None else profile[1],
                               None if profile is None else profile[0], at_us, survey)
        model = self.model
        return calibrated(model.calibration_x, model.calibration_y, _sigmoid(z))

    def predict(self, state: Customer, at_us: int) -> list[Any]:
        """The customer's prediction as the state keeps it after each batch: [probability
        of a low NPS answer, model version, at (µs)]. Its reasons are a function of the
        same state and time, found when shown (``explained``): they cost more than the
        probability, and most predictions are never read."""
        return [round(self.probability(state, at_us, "nps"), 4), self.model.version, at_us]

    def explained(self, state: Customer, at_us: int, probability: float | None = None
                  ) -> list[Any]:
        """``predict`` with its reasons: [..., [[feature, value], ...]] (``probability``:
        the one ``predict`` gave for the same state and time, when known)."""
        row = self.row(state, at_us)
        if probability is None:
            probability = round(self.model.probability(row), 4)
        return [probability, self.model.version, at_us,
                [[name, value] for name, value in self.model.reasons(row)]]


def prediction_json(kept: list[Any] | None) -> dict[str, Any] | None:
    """A kept prediction as the API shows it (reasons: [] when not ``explained``)."""
    if not kept:
        return None
    probability, version, at_us, *explained = kept
    reasons = explained[0] if explained else []
    return {"probability": probability, "model_version": version,
            "at": from_us(at_us).isoformat(),
            "reasons": [{"feature": name, "value": value, "text": reason_text(name, value)}
                        for name, value in reasons]}
