"""``cxstream model train``: the prediction model fitted on the input topics' history.

Shape: raw inputs -> (parsed, in event-time order) -> one feature row per answer, built
from the customer's state before it (scoring.features), labelled low or not -> a
logistic regression fitted on the earliest answers, calibrated (isotonic) on the next
ones, evaluated on the latest -> a model file (scoring.prediction.ModelFile).

scikit-learn fits it (the ``model`` extra): a well-kept, tested implementation of both
fits and of the evaluation's AUC and Brier score; the worker scores with the file alone.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.parsing import InputKind, Rejection, parse_input
from cxstream.scoring.features import (
    FEATURE_VERSION,
    Thresholds,
    Vocabulary,
    feature_names,
    feature_row,
    note_interaction,
)
from cxstream.scoring.journey import Journey
from cxstream.scoring.plain_customer import to_us
from cxstream.scoring.prediction import MODEL_FORMAT, ModelFile
from cxstream.scoring.recompute import RawInput

TRAIN_SHARE, CALIBRATION_SHARE = 0.7, 0.1  # of the answers, oldest first; the rest tests
SEGMENTS_KEPT, CHANNELS_KEPT = 20, 12
CALIBRATION_POINTS = 200
Event = CustomerProfile | Interaction | Feedback


@dataclass
class _Person:
    __slots__ = ("last_scores", "ledger", "profile_at", "segment", "value")

    ledger: list[list[Any]]
    last_scores: dict[str, tuple[int, int, str]]
    segment: str | None
    value: float | None
    profile_at: int


@dataclass
class Rows:
    """One feature row per answer, in time order."""

    names: list[str]
    x: array = field(default_factory=lambda: array("d"))
    low: bytearray = field(default_factory=bytearray)
    at: array = field(default_factory=lambda: array("q"))
    event_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.low)


def parsed_events(inputs: Iterable[RawInput], kind_of_topic: dict[str, InputKind],
                  max_bytes: int, refused: Counter[str]) -> list[tuple[int, int, Event]]:
    """The valid inputs as (event time in µs, arrival number, event), in time order
    (a profile by its updated_at); the refused counted by error class."""
    events: list[tuple[int, int, Event]] = []
    for number, raw in enumerate(inputs):
        kind = kind_of_topic.get(raw.topic)
        if kind is None:
            continue
        event = parse_input(kind, raw.key, raw.value, max_bytes)
        if isinstance(event, Rejection):
            refused[event.error_class.value] += 1
            continue
        moment = event.updated_at if isinstance(event, CustomerProfile) else event.occurred_at
        events.append((to_us(moment), number, event))  # type: ignore[arg-type]
    events.sort(key=lambda item: (item[0], item[1]))
    return events


def vocabulary_seen(events: Iterable[tuple[int, int, Event]], journey: Journey) -> Vocabulary:
    """The segments and channels seen most, and the journey's stages."""
    segments: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for _, _, event in events:
        if isinstance(event, CustomerProfile):
            segments[event.segment] += 1
        elif isinstance(event, Interaction):
            channels[event.channel] += 1
    return Vocabulary(tuple(sorted(name for name, _ in segments.most_common(SEGMENTS_KEPT))),
                      tuple(sorted(name for name, _ in channels.most_common(CHANNELS_KEPT))),
                      tuple(journey.order()))


def build_rows(events: Iterable[tuple[int, int, Event]], vocabulary: Vocabulary,
               journey: Journey, thresholds: Thresholds, keep_ids: bool = False) -> Rows:
    """Replay ``events`` (in time order): a row per answer from what came before it."""
    rows = Rows(feature_names(vocabulary))
    people: dict[str, _Person] = {}
    for at, _, event in events:
        person = people.get(event.customer_id)
        if person is None:
            person = people[event.customer_id] = _Person([], {}, None, None, -1)
        if isinstance(event, Interaction):
            note_interaction(person.ledger, at, event.channel, event.touchpoint,
                             event.outcome, event.wait_seconds, event.sentiment,
                             thresholds)
        elif isinstance(event, Feedback):
            rows.x.extend(feature_row(person.ledger, person.last_scores, person.value,
                                      person.segment, at, event.survey, vocabulary,
                                      journey, thresholds))
            rows.low.append(thresholds.is_low(event.survey, event.score))
            rows.at.append(at)
            if keep_ids:
                rows.event_ids.append(event.event_id)
            previous = person.last_scores.get(event.survey)
            if previous is None or at >= previous[1]:
                person.last_scores[event.survey] = (event.score, at, event.event_id)
        elif at >= person.profile_at:
            person.segment, person.value, person.profile_at = event.segment, event.value, at
    return rows


@dataclass(frozen=True)
class Split:
    train: slice
    calibration: slice
    test: slice


def time_split(count: int) -> Split:
    a, b = int(count * TRAIN_SHARE), int(count * (TRAIN_SHARE + CALIBRATION_SHARE))
    return Split(slice(0, a), slice(a, b), slice(b, count))


def fit(rows: Rows, vocabulary: Vocabulary, since: datetime | None = None,
        clock: Callable[[], float] = time.time) -> tuple[ModelFile, Any]:
    """The model file of ``rows``, and the test slice's calibrated probabilities."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    width = len(rows.names)
    x = np.frombuffer(rows.x, dtype=np.float64).reshape(-1, width)
    y = np.frombuffer(rows.low, dtype=np.uint8).astype(np.int8)
    split = time_split(len(y))
    for name, part in (("training", split.train), ("calibration", split.calibration),
                       ("test", split.test)):
        if len(set(y[part].tolist())) < 2:
            raise ValueError(f"the {name} answers are all low or all not: too few answers "
                             f"to train on ({len(y)})")
    scaler = StandardScaler().fit(x[split.train])
    regression = LogisticRegression(C=1.0, max_iter=500)
    regression.fit(scaler.transform(x[split.train]), y[split.train])
    weights = regression.coef_[0] / scaler.scale_
    intercept = float(regression.intercept_[0] - (weights * scaler.mean_).sum())

    def linear(part: slice) -> Any:
        return 1 / (1 + np.exp(-(x[part] @ weights + intercept)))

    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(linear(split.calibration), y[split.calibration])
    cx, cy = _thinned(isotonic.X_thresholds_, isotonic.y_thresholds_)
    tested = isotonic.predict(linear(split.test))
    evaluation = evaluate(y[split.test], tested)
    evaluation["answers"] = {"training": split.train.stop,
                             "calibration": split.calibration.stop - split.calibration.start,
                             "test": len(y) - split.test.start}
    evaluation["low_share"] = round(float(y.mean()), 4)
    trained = {"at": datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds"),
               "since": None if since is None else since.isoformat(),
               "from": _iso_us(rows.at[0]), "to": _iso_us(rows.at[-1]),
               "test_from": _iso_us(rows.at[split.test.start])}
    file = ModelFile(format=MODEL_FORMAT, feature_version=FEATURE_VERSION,
                     features=rows.names, vocabulary=vocabulary.as_json(),
                     weights=[float(w) for w in weights], intercept=intercept,
                     means=[float(m) for m in scaler.mean_], calibration_x=cx,
                     calibration_y=cy, evaluation=evaluation, trained=trained)
    return file, tested


def evaluate(low: Any, probability: Any) -> dict[str, Any]:
    """AUC, Brier score and the calibration by decile of predicted probability (equal
    counts, lowest first) of predictions against what was answered."""
    import numpy as np
    from sklearn.metrics import brier_score_loss, roc_auc_score

    order = np.argsort(probability, kind="stable")
    deciles = []
    for part in np.array_split(order, 10):
        if len(part):
            deciles.append({"predicted": round(float(probability[part].mean()), 4),
                            "observed": round(float(low[part].mean()), 4),
                            "answers": len(part)})
    gap = max(abs(d["predicted"] - d["observed"]) for d in deciles)
    return {"auc": round(float(roc_auc_score(low, probability)), 4),
            "brier": round(float(brier_score_loss(low, probability)), 4),
            "deciles": deciles, "largest_decile_gap": round(gap, 4)}


def _thinned(xs: Any, ys: Any) -> tuple[list[float], list[float]]:
    """At most CALIBRATION_POINTS points of the isotonic map, its ends kept."""
    import numpy as np

    if len(xs) > CALIBRATION_POINTS:
        grid = np.quantile(xs, np.linspace(0, 1, CALIBRATION_POINTS))
        xs, ys = grid, np.interp(grid, xs, ys)
    if len(xs) < 2:  # a constant map
        xs, ys = np.array([0.0, 1.0]), np.array([ys[0], ys[0]])
    return [float(v) for v in xs], [float(v) for v in ys]


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="seconds")


def train(inputs: Iterable[RawInput], kind_of_topic: dict[str, InputKind], max_bytes: int,
          journey: Journey, thresholds: Thresholds, since: datetime | None = None
          ) -> tuple[ModelFile, dict[str, Any]]:
    """The model of ``inputs``, with what the replay read (counts and seconds)."""
    began = time.perf_counter()
    refused: Counter[str] = Counter()
    events = parsed_events(inputs, kind_of_topic, max_bytes, refused)
    parsed = time.perf_counter()
    vocabulary = vocabulary_seen(events, journey)
    rows = build_rows(events, vocabulary, journey, thresholds)
    built = time.perf_counter()
    if len(rows) < 100:
        raise ValueError(f"only {len(rows)} answers since then: too few to train on "
                         "(at least 100)")
    file, _ = fit(rows, vocabulary, since)
    done = time.perf_counter()
    return file, {"events": len(events), "answers": len(rows), "refused": dict(refused),
                  "seconds": {"parse": round(parsed - began, 1),
                              "features": round(built - parsed, 1),
                              "fit": round(done - built, 1)}}


def records_of(rows: Rows) -> Iterator[tuple[list[float], int]]:
    """(row, low) pairs: for tests and the bench."""
    width = len(rows.names)
    for i in range(len(rows)):
        yield list(rows.x[i * width:(i + 1) * width]), rows.low[i]
