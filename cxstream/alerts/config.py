"""The alert rules file: what each rule looks for, routing, response times.

Loaded and validated at start-up (CXSTREAM_RULES_FILE, YAML or TOML; default: the shipped
default_rules.yaml); a mistake stops the worker with the file and the key that is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from cxstream.alerts.customer_rules import ADDED_RULES
from cxstream.alerts.priorities import PrioritiesConfig
from cxstream.alerts.rule_settings import (
    DetractorRule,
    HighValueAtRiskRule,
    RecurringIssueRule,
    SegmentDropRule,
    Severity,
    SocialNegativeRule,
)
from cxstream.alerts.survey_config import Surveys
from cxstream.scoring.journey import Journey


class RulesError(ValueError):
    """The rules file is invalid; the message says where."""


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segment_teams: dict[str, str] = {}
    default_team: str = Field(default="customer-care", min_length=1)
    cx_team: str = Field(default="cx-managers", min_length=1)


class Lifecycle(BaseModel):
    """Deadlines, escalation and resolution of alerts (alerts.lifecycle)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: an acknowledged alert is resolved within this (else it escalates)
    resolve_hours: dict[Severity, float] = {"critical": 24, "warning": 72, "info": 168}
    #: team -> who takes its alerts when a deadline passes
    escalation_targets: dict[str, str] = {}
    #: for a team without a target (null: the alert stays with its team, one step up)
    default_escalation_target: str | None = None
    max_escalations: int = Field(default=2, ge=0, le=10)
    resolution_categories: list[str] = Field(
        default=["fixed", "contacted", "compensated", "no_action_needed", "duplicate"],
        min_length=1)
    snooze_max_hours: float = Field(default=168, gt=0)
    #: after a snooze, this long before the deadline can escalate
    snooze_grace_minutes: float = Field(default=60, ge=0)
    #: how often deadlines and snoozes are checked
    check_every_seconds: float = Field(default=30, gt=0, le=3_600)

    @model_validator(mode="after")
    def _auto_is_reserved(self) -> Lifecycle:
        if "auto" in self.resolution_categories:
            raise ValueError("resolution_categories: 'auto' is reserved for auto-resolve")
        return self


class Drivers(BaseModel):
    """What explains a score's change (scoring.drivers): in the API, the console and the
    summaries of group alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a part with fewer answers in a window it has answers in is shown as too thin,
    #: and never named in a summary
    min_answers: int = Field(default=10, ge=1)
    #: the drivers a summary names ("delivery -15.2, billing -6.1"; at most 3: a summary
    #: holds up to four names, alerts.bounds)
    named: int = Field(default=2, ge=1, le=3)


class Notifications(BaseModel):
    """Where alert messages go, who is mentioned, and how many one recipient gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: team -> webhook URL (a secret: write "env:NAME" to read it from the environment)
    destinations: dict[str, SecretStr] = {}
    #: for teams without a destination (null: CXSTREAM_WEBHOOK_URL)
    default_destination: SecretStr | None = None
    #: owner or team -> Slack user or group id, mentioned in the message
    slack_users: dict[str, str] = {}
    #: warning and info alerts posted one by one per recipient in a rolling hour; the rest
    #: wait for the digest (critical alerts never wait)
    budget_per_hour: int = Field(default=20, ge=0)
    digest_every_minutes: float = Field(default=15, gt=0, le=24 * 60)
    comment_max_chars: int = Field(default=300, ge=20, le=2_000)
    signals_shown: int = Field(default=3, ge=0, le=10)

    @field_validator("destinations", "default_destination", mode="before")
    @classmethod
    def _from_environment(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {team: _secret_value(url) for team, url in value.items()}
        return None if value is None else _secret_value(value)

    def destination(self, team: str) -> str | None:
        secret = self.destinations.get(team) or self.default_destination
        return secret.get_secret_value() if secret is not None else None


def _secret_value(value: Any) -> Any:
    """"env:NAME" -> the variable's value (an error naming it when unset)."""
    if isinstance(value, str) and value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        value = os.environ[name]
    if isinstance(value, str) and not re.fullmatch(r"https?://\S+", value):
        raise ValueError("a destination is an http(s) URL")
    return value


class RulesConfig(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detractor: DetractorRule = DetractorRule()
    high_value_at_risk: HighValueAtRiskRule = HighValueAtRiskRule()
    recurring_issue: RecurringIssueRule = RecurringIssueRule()
    segment_drop: SegmentDropRule = SegmentDropRule()
    drivers: Drivers = Drivers()
    social_negative: SocialNegativeRule = SocialNegativeRule()
    routing: Routing = Routing()
    lifecycle: Lifecycle = Lifecycle()
    notifications: Notifications = Notifications()
    response_hours: dict[Severity, float] = {"critical": 4, "warning": 24, "info": 72}
    context_interactions: int = Field(default=5, ge=0, le=50)
    #: customer alerts only for events at most this old when processed: a backfill of
    #: last month's surveys must not page anyone (the scores still count them)
    max_event_age_hours: float = Field(default=48, gt=0)
    #: survey requests: which interactions call for one, and when not to ask
    surveys: Surveys = Surveys()
    #: journey stages of the touchpoints, for scores per stage
    journey: Journey = Journey()
    #: issues ranked by the customers they hit and the revenue at stake
    priorities: PrioritiesConfig = PrioritiesConfig()
    #: the sections of customer rules added in alerts.customer_rules, validated there
    _added_rules: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _added_rule_sections(cls, data: Any, handler: ValidatorFunctionWrapHandler
                             ) -> RulesConfig:
        """The section of each customer rule added in alerts.customer_rules, validated by
        the rule's own settings model (its defaults when the file has none); any other
        unknown section is refused as before."""
        if not isinstance(data, dict) or not ADDED_RULES:
            config: RulesConfig = handler(data)
            return config
        data = dict(data)
        sections = {}
        for rule in ADDED_RULES:
            try:
                sections[rule.name] = rule.settings.model_validate(data.pop(rule.name, None)
                                                                   or {})
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in (rule.name, *error["loc"]))
                raise ValueError(f"{where}: {error['msg']}") from None
        config = handler(data)
        config._added_rules = sections
        return config

    def rule_settings(self, name: str) -> Any:
        """The section of the rule ``name``: a built-in rule's field, or an added rule's
        validated section. Raises KeyError for a rule that is neither."""
        if name in _SECTIONS:
            return getattr(self, name)
        return self._added_rules[name]


#: the rules file's own sections (pydantic's model_fields is slow to ask at every event)
_SECTIONS = frozenset(RulesConfig.model_fields)


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
