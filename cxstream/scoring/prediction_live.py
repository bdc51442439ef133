"""The model measured as it runs: every new answer against the prediction made just before
it (prequential evaluation), per model version and week (docs/predictions.md).

Shape: (model version, answer time, predicted probability, low or not) -> per version and
ISO week: answers, lows, the Brier score's sum, and counts by probability bin (BINS equal
bins of width 1 / BINS), from which the AUC and the calibration by decile are read.
Bounded: WEEKS_KEPT weeks per version, VERSIONS_KEPT versions, 2 x BINS counts a week,
whatever the traffic.

The AUC from bins treats two answers in one bin as tied (half a pair each): with 100 bins
it is within 0.01 of the exact AUC unless the probabilities crowd into a few bins. The
counts live in the worker's memory: a restart starts them again from its next answers
(they describe the model's recent answers, not a ledger).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BINS = 100
WEEKS_KEPT = 12
VERSIONS_KEPT = 4


@dataclass
class WeekTally:
    answers: int = 0
    lows: int = 0
    squared_error: float = 0.0
    low_bins: list[int] = field(default_factory=lambda: [0] * BINS)
    other_bins: list[int] = field(default_factory=lambda: [0] * BINS)
    predicted_sum_bins: list[float] = field(default_factory=lambda: [0.0] * BINS)

    def add(self, probability: float, low: bool) -> None:
        slot = min(int(probability * BINS), BINS - 1)
        self.answers += 1
        self.squared_error += (probability - low) ** 2
        self.predicted_sum_bins[slot] += probability
        if low:
            self.lows += 1
            self.low_bins[slot] += 1
        else:
            self.other_bins[slot] += 1

    def auc(self) -> float | None:
        """P(a low answer's prediction > another's), ties half (None: one class only)."""
        others = self.answers - self.lows
        if not self.lows or not others:
            return None
        below = 0  # other answers in lower bins
        pairs = 0.0
        for lows, rest in zip(self.low_bins, self.other_bins, strict=True):
            pairs += lows * (below + rest / 2)
            below += rest
        return pairs / (self.lows * others)

    def brier(self) -> float | None:
        return self.squared_error / self.answers if self.answers else None

    def deciles(self) -> list[dict[str, Any]]:
        """Calibration by decile of predicted probability (0-10 %, ..., 90-100 %)."""
        width = BINS // 10
        found = []
        for decile in range(10):
            part = slice(decile * width, (decile + 1) * width)
            count = sum(self.low_bins[part]) + sum(self.other_bins[part])
            if count:
                found.append({"from": decile / 10, "to": (decile + 1) / 10,
                              "answers": count,
                              "predicted": round(sum(self.predicted_sum_bins[part]) / count, 4),
                              "observed": round(sum(self.low_bins[part]) / count, 4)})
        return found

    def to_json(self) -> list[Any]:
        return [self.answers, self.lows, self.squared_error, self.low_bins,
                self.other_bins, self.predicted_sum_bins]

    @classmethod
    def from_json(cls, body: list[Any]) -> WeekTally:
        answers, lows, squared, low_bins, other_bins, sums = body
        if not len(low_bins) == len(other_bins) == len(sums) == BINS:
            raise ValueError(f"a week's tally has {BINS} bins")
        return cls(int(answers), int(lows), float(squared), [int(n) for n in low_bins],
                   [int(n) for n in other_bins], [float(v) for v in sums])

    def merge(self, other: WeekTally) -> None:
        """Add another worker's tally of the same version and week (they are sums)."""
        self.answers += other.answers
        self.lows += other.lows
        self.squared_error += other.squared_error
        for slot in range(BINS):
            self.low_bins[slot] += other.low_bins[slot]
            self.other_bins[slot] += other.other_bins[slot]
            self.predicted_sum_bins[slot] += other.predicted_sum_bins[slot]

    def report(self) -> dict[str, Any]:
        auc, brier = self.auc(), self.brier()
        return {"answers": self.answers, "lows": self.lows,
                "auc": None if auc is None else round(auc, 4),
                "brier": None if brier is None else round(brier, 4),
                "deciles": self.deciles()}


def week_of(at_us: int) -> str:
    year, week, _ = datetime.fromtimestamp(at_us / 1e6, UTC).isocalendar()
    return f"{year}-W{week:02d}"


class LiveEvaluation:
    """The weekly tallies of every model version seen here, newest kept."""

    def __init__(self) -> None:
        self.weeks: dict[str, dict[str, WeekTally]] = {}  # version -> week -> tally

    def add(self, version: str, at_us: int, probability: float, low: bool) -> None:
        weeks = self.weeks.get(version)
        if weeks is None:
            weeks = self.weeks[version] = {}
            while len(self.weeks) > VERSIONS_KEPT:
                del self.weeks[next(iter(self.weeks))]
        week = week_of(at_us)
        tally = weeks.get(week)
        if tally is None:
            tally = weeks[week] = WeekTally()
            while len(weeks) > WEEKS_KEPT:
                del weeks[min(weeks)]
        tally.add(probability, low)

    def latest(self, version: str) -> tuple[str, WeekTally] | None:
        weeks = self.weeks.get(version)
        if not weeks:
            return None
        week = max(weeks)
        return week, weeks[week]

    def report(self) -> dict[str, dict[str, Any]]:
        return {version: {week: tally.report() for week, tally in sorted(weeks.items())}
                for version, weeks in self.weeks.items()}

    def to_json(self) -> dict[str, dict[str, list[Any]]]:
        return {version: {week: tally.to_json() for week, tally in weeks.items()}
                for version, weeks in self.weeks.items()}


def merged(shares: list[dict[str, dict[str, list[Any]]]]) -> LiveEvaluation:
    """Every worker's tallies (``LiveEvaluation.to_json``) added up, per version and week:
    the whole cluster's answers (each answer is counted by the one worker that folded
    it). Bounded as each share is: the newest VERSIONS_KEPT versions by their newest
    week, WEEKS_KEPT weeks each."""
    total = LiveEvaluation()
    for share in shares:
        for version, bodies in share.items():
            into = total.weeks.setdefault(version, {})
            for week, body in bodies.items():
                tally = WeekTally.from_json(body)
                if week in into:
                    into[week].merge(tally)
                else:
                    into[week] = tally
    for kept in total.weeks.values():
        for week in sorted(kept)[:-WEEKS_KEPT]:
            del kept[week]
    newest = sorted(total.weeks, key=lambda v: max(total.weeks[v], default=""))
    for version in newest[:-VERSIONS_KEPT]:
        del total.weeks[version]
    return total
