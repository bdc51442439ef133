"""A demo run's own settings, rules file and users file: topics and group named after the
run, free ports, the recurring-issue threshold scaled to the run's traffic."""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxstream.cli.simulator.generator import SimConfig, SimRecord
from cxstream.streams.settings import Settings, load_settings

DEFAULT_RULES = resources.files("cxstream.alerts") / "default_rules.yaml"
#: events per day of the model's simulated history
MODEL_PER_DAY = 2_000
MODEL_DAYS = 60  # simulated days the demo's prediction model is trained on
RECURRING_SHARE = 0.025  # recurring-issue threshold: this share of the run's live events


def demo_settings(settings: Settings, run_id: str) -> Settings:
    overrides = {
        "app_id": f"cxstream-{run_id}",
        "data_dir": str(settings.data_dir.parent / run_id),
        "topic_interactions": f"{run_id}.cx.interactions",
        "topic_feedback": f"{run_id}.cx.feedback",
        "topic_customers": f"{run_id}.cx.customers",
        "topic_alerts": f"{run_id}.cx.alerts",
        "topic_deadletter": f"{run_id}.cx.deadletter",
        "topic_alerts_deadletter": f"{run_id}.cx.alerts.deadletter",
        "topic_alert_lifecycle": f"{run_id}.cx.alert-lifecycle",
        "topic_survey_requests": f"{run_id}.cx.survey-requests",
        "value_band_refresh_seconds": "5",
        "metrics_group_detail": "true",  # the dashboard shows scores per segment
        # the history goes back history_days; the worker must not call it late
        "allowed_lateness_seconds": str(86_400 * 60),
        "web_port": str(free_port_or(settings.web_host, settings.web_port)),
    }
    if settings.api_token is None:
        overrides["api_token"] = secrets.token_urlsafe(32)
    return load_settings({}, **{**as_strings(settings), **overrides})


def as_strings(settings: Settings) -> dict[str, str]:
    values = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        values[name] = value if isinstance(value, str) else (
            json.dumps(value) if isinstance(value, (list, dict)) else str(value))
    return values


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update({f"CXSTREAM_{name.upper()}": value
                for name, value in as_strings(settings).items()})
    return env


def free_port_or(host: str, port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
            return port
        except OSError:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])


def write_rules(settings: Settings, records: list[SimRecord], duration: float) -> Path:
    rules = yaml.safe_load((settings.rules_file or DEFAULT_RULES).read_text())
    live = sum(1 for r in records if r.at > 0 and not r.malformed and not r.incident)
    rules["recurring_issue"]["min_customers"] = max(10, math.ceil(RECURRING_SHARE * live))
    rules["segment_drop"]["evaluate_every_seconds"] = 5
    # a share of the run instead of hours, so that the run shows escalations
    due = {"critical": 0.5 * duration, "warning": 0.35 * duration, "info": 0.35 * duration}
    rules["response_hours"] = {severity: seconds / 3_600 for severity, seconds in due.items()}
    rules.setdefault("lifecycle", {})["check_every_seconds"] = 5
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


DEMO_USER, DEMO_AGENT = "demo", "demo-agent"


def write_users(settings: Settings) -> tuple[Path, dict[str, str]]:
    """A users file with the console's demo user and the agent that acknowledges alerts."""
    tokens = {DEMO_USER: secrets.token_urlsafe(24), DEMO_AGENT: secrets.token_urlsafe(24)}
    users = {"users": [{"name": name, "token": token, "role": "lead", "teams": []}
                       for name, token in tokens.items()]}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "users.yaml"
    path.write_text(yaml.safe_dump(users, sort_keys=False))
    path.chmod(0o600)
    return path, tokens


def train_demo_model(settings: Settings, config: SimConfig, start: datetime
                     ) -> tuple[Path, dict[str, Any]] | None:
    """A prediction model trained on 60 simulated days of the demo's customers, with
    hidden traits (cli.simulator.propensity) that make their answers predictable, ending
    where the demo's own history begins; None without scikit-learn (the ``model``
    extra). The demo's live traffic has no traits: the model scores it as it would a
    real customer base it was not trained on."""
    try:
        from cxstream.cli.model_training import train
    except ImportError:
        return None
    from cxstream.alerts.config import load_rules
    from cxstream.cli.simulator.generator import history_inputs, simulate
    from cxstream.scoring.features import Thresholds

    history = config.model_copy(update={
        "history_days": MODEL_DAYS, "history_per_day": MODEL_PER_DAY, "history_until": "start",
        "propensity": True, "incidents": False, "malformed_share": 0.0})
    began = start - config.history_gap(start) - timedelta(days=config.history_days)
    inputs = history_inputs(simulate(history, began), {
        "customers": settings.topic_customers, "interactions": settings.topic_interactions,
        "feedback": settings.topic_feedback})
    rules = settings.fold_rules(load_rules(settings.rules_file).journey)
    file, read = train(inputs, settings.input_kinds(), settings.max_event_bytes,
                       rules.journey, Thresholds.of(rules.state))
    path = settings.data_dir / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(file.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return path, {"model_version": file.version(), "answers": read["answers"],
                  **{name: file.evaluation[name] for name in ("auc", "brier",
                                                              "largest_decile_gap")}}
