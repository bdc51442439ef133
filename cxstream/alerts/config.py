"""The alert rules file: what each rule looks for, routing, response times.

Loaded and validated at start-up (CXSTREAM_RULES_FILE, YAML or TOML; default: the shipped
default_rules.yaml); a mistake stops the worker with the file and the key that is wrong.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Severity = Literal["info", "warning", "critical"]
RULE_NAMES = ("detractor", "high_value_at_risk", "recurring_issue", "segment_drop",
              "social_negative")


class RulesError(ValueError):
    """The rules file is invalid; the message says where."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = "warning"


class DetractorRule(_Rule):
    nps_max: int = Field(default=6, ge=0, le=10)
    csat_max: int | None = Field(default=2, ge=1, le=5)
    ces_max: int | None = Field(default=2, ge=1, le=7)
    cooldown_hours: float = Field(default=24, ge=0)


class HighValueAtRiskRule(_Rule):
    severity: Severity = "critical"
    cooldown_hours: float = Field(default=72, ge=0)


class RecurringIssueRule(_Rule):
    min_customers: int = Field(default=5, ge=2)
    window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)


class SegmentDropRule(_Rule):
    metrics: list[Literal["nps", "csat", "ces"]] = Field(default=["nps", "csat", "ces"],
                                                         min_length=1)
    window: str = "day"
    baseline_windows: int = Field(default=7, ge=1, le=60)
    min_sample: int = Field(default=30, ge=1)
    margins: dict[Literal["nps", "csat", "ces"], float] = {"nps": 10, "csat": 10, "ces": 0.5}
    evaluate_every_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _margin_per_metric(self) -> SegmentDropRule:
        missing = [metric for metric in self.metrics if metric not in self.margins]
        if missing:
            raise ValueError(f"margins needs a value for {', '.join(missing)}")
        return self


class SocialNegativeRule(_Rule):
    sentiment_max: float = Field(default=-0.5, ge=-1, le=1)
    cooldown_hours: float = Field(default=24, ge=0)


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segment_teams: dict[str, str] = {}
    default_team: str = Field(default="customer-care", min_length=1)
    cx_team: str = Field(default="cx-managers", min_length=1)


class RulesConfig(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detractor: DetractorRule = DetractorRule()
    high_value_at_risk: HighValueAtRiskRule = HighValueAtRiskRule()
    recurring_issue: RecurringIssueRule = RecurringIssueRule()
    segment_drop: SegmentDropRule = SegmentDropRule()
    social_negative: SocialNegativeRule = SocialNegativeRule()
    routing: Routing = Routing()
    response_hours: dict[Severity, float] = {"critical": 4, "warning": 24, "info": 72}
    context_interactions: int = Field(default=5, ge=0, le=50)
    #: customer alerts only for events at most this old when processed: a backfill of
    #: last month's surveys must not page anyone (the scores still count them)
    max_event_age_hours: float = Field(default=48, gt=0)


def load_rules(path: Path | None = None) -> RulesConfig:
    """Read and validate a rules file (default: the shipped default_rules.yaml)."""
    if path is None:
        shipped_rules = resources.files("cxstream.alerts") / "default_rules.yaml"
        with resources.as_file(shipped_rules) as shipped:
            return _parse(shipped)
    if not path.is_file():
        raise RulesError(f"CXSTREAM_RULES_FILE: file not found: {path}")
    return _parse(path)


def _parse(path: Path) -> RulesConfig:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: cannot parse: {exc}") from exc
    try:
        return RulesConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or 'file'}: "
                 f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()]
        raise RulesError("invalid rules file:\n  " + "\n  ".join(lines)) from exc
