"""The worker's prequential evaluation: the predictions made before new answers, tallied
per model version and week (scoring.prediction_live) and shown as metrics."""

from __future__ import annotations

from typing import Any

from cxstream.scoring.prediction import Predictor
from cxstream.scoring.prediction_live import LiveEvaluation
from cxstream.streams.metrics import WorkerMetrics


class LivePredictions:
    """One worker's tallies of its own partitions' answers."""

    def __init__(self, predictor: Predictor, metrics: WorkerMetrics) -> None:
        self.predictor = predictor
        self.version = predictor.model.version
        self.evaluation = LiveEvaluation()
        self.metrics = metrics
        training_auc = predictor.model.evaluation.get("auc")
        if isinstance(training_auc, int | float):
            metrics.prediction_training_auc.labels(self.version).set(training_auc)
        self._answers = {outcome: metrics.prediction_answers.labels(self.version, outcome)
                         for outcome in ("low", "other")}

    def observe(self, predicted: list[tuple[int, float, bool]], seconds: float) -> None:
        """A batch's new answers with the predictions made before them, and the seconds
        the batch's predictions took."""
        self.metrics.own_work["predict"].inc(seconds)
        if not predicted:
            return
        for at, probability, low in predicted:
            self.evaluation.add(self.version, at, probability, low)
            self._answers["low" if low else "other"].inc()
        latest = self.evaluation.latest(self.version)
        if latest is None:
            return
        _, tally = latest
        auc, brier = tally.auc(), tally.brier()
        metrics = self.metrics
        metrics.prediction_live_week_answers.labels(self.version).set(tally.answers)
        if auc is not None:
            metrics.prediction_live_auc.labels(self.version).set(auc)
        if brier is not None:
            metrics.prediction_live_brier.labels(self.version).set(brier)

    def report(self) -> dict[str, Any]:
        return {"model_version": self.version, "weeks": self.evaluation.report()}
