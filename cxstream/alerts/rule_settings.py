"""Each alert rule's section of the rules file (alerts.config reads the file): what every
rule has (``RuleSettings``) and the built-in rules' own settings. A rule added in
alerts.customer_rules keeps its settings model there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Severity = Literal["info", "warning", "critical"]


class RuleSettings(BaseModel):
    """What every rule's section of the rules file has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = "warning"
    #: resolve the rule's alerts by themselves once the cause is gone
    auto_resolve: bool = True


class DetractorRule(RuleSettings):
    nps_max: int = Field(default=6, ge=0, le=10)
    csat_max: int | None = Field(default=2, ge=1, le=5)
    ces_max: int | None = Field(default=2, ge=1, le=7)
    cooldown_hours: float = Field(default=24, ge=0)
    #: a later answer of the same survey at or above these resolves the alert
    recovered_nps_min: int = Field(default=9, ge=0, le=10)
    recovered_csat_min: int = Field(default=4, ge=1, le=5)
    recovered_ces_min: int = Field(default=5, ge=1, le=7)


class HighValueAtRiskRule(RuleSettings):
    severity: Severity = "critical"
    cooldown_hours: float = Field(default=72, ge=0)


class RecurringIssueRule(RuleSettings):
    min_customers: int = Field(default=5, ge=2)
    window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)


class SegmentDropRule(RuleSettings):
    metrics: list[Literal["nps", "csat", "ces"]] = Field(default=["nps", "csat", "ces"],
                                                         min_length=1)
    window: str = "day"
    baseline_windows: int = Field(default=7, ge=1, le=60)
    min_sample: int = Field(default=30, ge=1)
    margins: dict[Literal["nps", "csat", "ces"], float] = {"nps": 10, "csat": 10, "ces": 0.5}
    evaluate_every_seconds: float = Field(default=30, gt=0)
    #: the group dimensions evaluated (agent: the scores of people, off unless named)
    dimensions: list[Literal["segment", "channel", "touchpoint", "stage", "agent"]] = Field(
        default=["segment", "channel", "touchpoint", "stage"], min_length=1)
    #: fdr: a drop is a discovery of a z-test at this false discovery rate over every
    #: group and metric of one evaluation (Benjamini-Hochberg) that also exceeds its
    #: margin, or a sustained rise of bad answers seen by a CUSUM while the score is below
    #: the baseline. margin: the drop exceeds the margin and the margin of error (the
    #: only test before 0.5)
    test: Literal["fdr", "margin"] = "fdr"
    false_discovery_rate: float = Field(default=0.05, gt=0, lt=1)
    #: the drop the CUSUM is tuned to, as a share: 0.1 is NPS 10 points lower (promoters
    #: to detractors) or 10 points more unsatisfied CSAT or hard CES answers; it signals
    #: when its log-likelihood ratio reaches the threshold
    cusum_shift: float = Field(default=0.1, gt=0, lt=1)
    cusum_threshold: float = Field(default=11.0, gt=0)

    @model_validator(mode="after")
    def _margin_per_metric(self) -> SegmentDropRule:
        missing = [metric for metric in self.metrics if metric not in self.margins]
        if missing:
            raise ValueError(f"margins needs a value for {', '.join(missing)}")
        return self


class SocialNegativeRule(RuleSettings):
    sentiment_max: float = Field(default=-0.5, ge=-1, le=1)
    cooldown_hours: float = Field(default=24, ge=0)
    #: a later social post at or above this sentiment resolves the alert
    recovered_sentiment_min: float = Field(default=0.5, ge=-1, le=1)
