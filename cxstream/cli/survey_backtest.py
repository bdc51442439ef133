"""Surveys backtest: replay the input topics through a rules file's survey policy, as
``cxstream rules backtest`` does for alerts, and count what the policy would have done
with each request its triggers asked for.

Shape: inputs -> cli.backtest.Replay (a worker's state writer on dict tables, its clock
the records' time) with the survey desk telling each decision (streams.customers.
survey_desk.SurveyDesk.audit), deferred requests looked at again every
``surveys.check_every_seconds`` as the worker's timer does -> per request, its last
decision: sent (at once or after waiting), suppressed with the reason, or still waiting
at the end -> counts by outcome, reason, segment and trigger.

What the replay does not know: the survey memory customers had before ``since`` (the
requests sent and answers given earlier), so the first weeks of a long fatigue interval
ask more than a worker would have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cxstream.alerts.config import RulesConfig
from cxstream.alerts.surveys import Candidate, Decision
from cxstream.cli.backtest import Replay
from cxstream.scoring.recompute import RawInput
from cxstream.streams.settings import Settings

#: (outcome, reason, segment, trigger) of one request
Row = tuple[str, str, str, str]


@dataclass
class SurveyReport:
    rules: str
    inputs: int = 0
    #: request id -> (trigger, segment, last action, last reason, deferred once)
    requests: dict[str, tuple[str, str, str, str, bool]] = field(default_factory=dict)

    def note(self, candidate: Candidate, decision: Decision, segment: str | None) -> None:
        earlier = self.requests.get(candidate.request_id)
        deferred = decision.action == "later" or (earlier is not None and earlier[4])
        reason: str = decision.reason or "none"
        if earlier is not None and earlier[4] and decision.reason is None:
            reason = earlier[3]  # sent after waiting: why it waited
        self.requests[candidate.request_id] = (
            candidate.trigger, segment or "unknown", decision.action, reason, deferred)

    def rows(self) -> Counter[Row]:
        """Requests by what became of them: sent (at once, or after waiting),
        suppressed with the reason, or waiting when the replay ended."""
        found: Counter[Row] = Counter()
        for trigger, segment, action, reason, deferred in self.requests.values():
            if action == "send":
                outcome, why = ("sent after waiting", reason) if deferred else ("sent", "-")
            elif action == "later":
                outcome, why = "waiting at the end", reason
            else:
                outcome, why = "suppressed", reason
            found[(outcome, why, segment, trigger)] += 1
        return found

    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (outcome, _, _, _), count in self.rows().items():
            totals[outcome] += count
        return {"asked": len(self.requests), **dict(sorted(totals.items()))}


class SurveyReplay(Replay):
    """A replay whose timer looks at the deferred survey requests."""

    def __init__(self, settings: Settings, config: RulesConfig, name: str) -> None:
        super().__init__(settings, config, name)
        self.surveys = SurveyReport(name)
        desk = self.writer.surveys
        if desk is not None:
            desk.audit = self.surveys.note
        self.check_every = config.surveys.check_every_seconds
        self.next_check: float | None = None

    def _evaluations_due(self, timestamp: float) -> list[float]:
        if self.next_check is None:
            self.next_check = timestamp + self.check_every
        due = []
        while timestamp >= self.next_check:
            due.append(self.next_check)
            self.next_check += self.check_every
        return due

    def evaluate_segments(self, at: float) -> None:
        self.writer.send_due_surveys(self.partitions)


async def replay_surveys(settings: Settings, config: RulesConfig, name: str,
                         inputs: Iterable[RawInput],
                         advance: Callable[[int], None] = lambda n: None) -> SurveyReport:
    replay = SurveyReplay(settings, config, name)
    report = await replay.run(inputs, advance)
    replay.surveys.inputs = report.inputs
    return replay.surveys


def report_json(report: SurveyReport) -> dict[str, Any]:
    return {"rules": report.rules, "inputs": report.inputs, "totals": report.totals(),
            "requests": [{"outcome": outcome, "reason": reason, "segment": segment,
                          "trigger": trigger, "requests": count}
                         for (outcome, reason, segment, trigger), count
                         in sorted(report.rows().items())]}


def comparison(current: SurveyReport, proposed: SurveyReport) -> list[dict[str, Any]]:
    """Per outcome and reason (all segments and triggers): the requests of each policy."""
    def by_reason(report: SurveyReport) -> Counter[tuple[str, str]]:
        found: Counter[tuple[str, str]] = Counter()
        for (outcome, reason, _, _), count in report.rows().items():
            found[(outcome, reason)] += count
        return found
    now, then = by_reason(current), by_reason(proposed)
    return [{"outcome": outcome, "reason": reason, "current": now[(outcome, reason)],
             "proposed": then[(outcome, reason)]}
            for outcome, reason in sorted(set(now) | set(then))]
