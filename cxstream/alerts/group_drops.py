"""Group drops: which groups' scores fell, over every group of one evaluation.

Shape: {(dimension, key): (current tally, baseline tally)} of the groups a worker
evaluates -> alerts (one per group, metric and window) and the figures of the groups back
at their baseline. Three tests (scoring.drops):
- ``fdr``: the z-test of each group's drop, its p-value always valid (one that repeated
  evaluations of a filling window do not wear down, scoring.drops.always_valid_p, for
  drops of about the metric's margin), with Benjamini-Hochberg over every group and
  metric of the evaluation at ``false_discovery_rate``; a discovery is raised when its
  drop also exceeds the metric's margin (a drop that matters, not only a real one);
- a CUSUM per group and metric on the share of bad answers, fed with the answers counted
  since the evaluation before: it catches a sustained drop before the window closes;
- ``margin`` (the rule's only test before 0.5): the drop exceeds the margin and the
  margin of error.
The CUSUM statistics are kept in memory, one per group and metric evaluated here (those
of groups no longer evaluated are dropped); after a restart they start again from the
current window's counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.group_rules import drop_alert, margin_drop, segment_recovered
from cxstream.schemas.outputs import Alert
from cxstream.scoring.conventions import Conventions
from cxstream.scoring.drivers import Metric
from cxstream.scoring.drops import (
    baseline_shares,
    benjamini_hochberg,
    categories,
    cusum_step,
    drop_test,
    shifted_shares,
)
from cxstream.scoring.tallies import Tally, scores

Group = tuple[str, str]  # (dimension, key)


@dataclass
class Cusum:
    start: int  # the window its counts are of
    counts: tuple[int, ...]  # the answers of that window already counted, by category
    statistic: float = 0.0


class DropEvaluation:
    """One worker's evaluation of its groups, with the CUSUMs between evaluations."""

    def __init__(self, config: RulesConfig, conventions: Conventions) -> None:
        self.config = config
        self.conventions = conventions
        self.cusums: dict[tuple[str, str, str], Cusum] = {}

    def evaluate(self, groups: dict[Group, tuple[Tally, Tally]], window: str, start: int,
                 now: datetime) -> tuple[list[Alert], dict[tuple[str, str, str], dict[str, Any]]]:
        """The drops of ``groups`` in the window starting at ``start``, and the (dimension,
        key, metric) back at their baseline, with figures."""
        rule = self.config.segment_drop
        alerts: list[Alert] = []
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        tested: list[tuple[Group, Metric, Any]] = []
        for group, (current, baseline) in sorted(groups.items()):
            for metric in rule.metrics:
                if rule.test == "margin":
                    drop = margin_drop(metric, current, baseline, self.config,
                                       self.conventions)
                    if drop is not None:
                        found[(*group, metric)] = {**drop, "test": "margin"}
                    continue
                test = drop_test(metric, current, baseline, self.conventions,
                                 rule.margins[metric])
                if test is not None and _enough(metric, current, baseline, rule.min_sample,
                                                self.conventions):
                    tested.append((group, metric, test))
        discoveries = benjamini_hochberg([t.always_valid for _, _, t in tested],
                                         rule.false_discovery_rate)
        for (group, metric, test), discovered in zip(tested, discoveries, strict=True):
            if discovered and test.drop > rule.margins[metric]:
                found[(*group, metric)] = {"test": "fdr",
                                           "p_value": float(f"{test.always_valid:.3g}"),
                                           "false_discovery_rate": rule.false_discovery_rate,
                                           "tested": len(tested)}
        if rule.test == "fdr":
            self._cusums(groups, start, found)
        recovered: dict[tuple[str, str, str], dict[str, Any]] = {}
        for group, (current, baseline) in groups.items():
            for metric in rule.metrics:
                key = (*group, metric)
                if key in found:
                    alerts.append(drop_alert(group, metric, current, baseline, window, start,
                                             found[key], self.config, self.conventions, now))
                else:
                    figures = segment_recovered(metric, current, baseline, self.config,
                                                self.conventions)
                    if figures is not None:
                        recovered[key] = figures
        return alerts, recovered

    def _cusums(self, groups: dict[Group, tuple[Tally, Tally]], start: int,
                found: dict[tuple[str, str, str], dict[str, Any]]) -> None:
        rule = self.config.segment_drop
        kept: dict[tuple[str, str, str], Cusum] = {}
        for group, (current, baseline) in groups.items():
            for metric in rule.metrics:
                before = categories(metric, baseline, self.conventions)
                if sum(before) < rule.min_sample:
                    continue
                counts = categories(metric, current, self.conventions)
                key = (*group, metric)
                state = self.cusums.get(key) or Cusum(start, (0,) * len(counts))
                if state.start != start or any(
                        now < seen for now, seen in zip(counts, state.counts, strict=True)):
                    state = Cusum(start, (0,) * len(counts), state.statistic)  # a new window
                p0 = baseline_shares(before)
                p1 = shifted_shares(metric, p0, rule.cusum_shift)
                new = tuple(now - seen for now, seen in zip(counts, state.counts, strict=True))
                state = Cusum(start, counts, cusum_step(state.statistic, new, p0, p1))
                if (state.statistic >= rule.cusum_threshold and key not in found
                        and _fell(metric, current, baseline, self.conventions)):
                    found[key] = {"test": "cusum", "cusum": round(state.statistic, 3),
                                  "cusum_threshold": rule.cusum_threshold}
                    state.statistic = 0.0  # signalled: watch again from here
                kept[key] = state
        self.cusums = kept


def _fell(metric: Metric, current: Tally, baseline: Tally, conventions: Conventions
          ) -> bool:
    test = drop_test(metric, current, baseline, conventions)
    return test is not None and test.drop > 0


def _enough(metric: Metric, current: Tally, baseline: Tally, min_sample: int,
            conventions: Conventions) -> bool:
    now, before = scores(current, conventions)[metric], scores(baseline, conventions)[metric]
    return (now is not None and before is not None and now["n"] >= min_sample
            and before["n"] >= min_sample)
