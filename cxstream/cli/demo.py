"""The main job: a broker, a worker and the simulator, with alerts and scores shown live.

Each run is independent: its topics are named ``<run>.cx.*`` and its worker group
``cxstream-<run>``, so a second run on the same broker starts from nothing and its
scripted incidents raise their alerts again. The run's rules are the default rules with
two changes for a short run on a laptop: the recurring-issue threshold is scaled to the
run's traffic (a fixed 5 customers an hour would fire on every busy touchpoint), and
segment drops are evaluated every 5 s.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import signal
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cxstream.cli.kafka import local_broker
from cxstream.cli.processes import WorkerExited, WorkerProcess
from cxstream.cli.scrape import Samples, parse_samples, total
from cxstream.cli.simulator.generator import SimConfig, SimRecord, simulate
from cxstream.cli.simulator.incidents import Expectation
from cxstream.cli.simulator.sending import send_records
from cxstream.streams.kafka.clients import aiokafka_options, ensure_topics
from cxstream.streams.settings import Settings, load_settings

DEFAULT_RULES = resources.files("cxstream.alerts") / "default_rules.yaml"
RECURRING_SHARE = 0.025  # recurring-issue threshold: this share of the run's live events
START_TIMEOUT = 120.0
SETTLE_TIMEOUT = 60.0  # after sending: time for the last alerts (segment drops, ...)
SCORE_METRICS = ("nps", "csat", "ces")


@dataclass
class DemoOptions:
    config: SimConfig = field(default_factory=SimConfig)
    keep_broker: bool = False
    refresh_seconds: float = 3.0
    summary_file: Path | None = None


@dataclass
class DemoRun:
    """What the run saw; becomes the summary."""

    expectations: list[Expectation]
    run_id: str = ""
    settings: Settings | None = None
    worker_pid: int | None = None
    malformed_sent: int = 0
    #: the malformed messages sent, by mistake (the simulator's names)
    malformed_kinds: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # first message per id
    deadlettered: int = 0
    consumed: int = 0
    finished: bool = False
    lifecycle: Counter[str] = field(default_factory=Counter)  # changes by action
    #: survey decisions by (action, reason), from the worker's metrics
    surveys: Counter[tuple[str, str]] = field(default_factory=Counter)
    console_url: str = ""
    console_token: str = ""
    #: the top three issues at the end (GET /api/priorities)
    priorities: list[dict[str, Any]] = field(default_factory=list)

    def caught(self) -> dict[str, list[dict[str, Any]]]:
        alerts = list(self.alerts.values())
        return {e.incident: e.caught_by(alerts) for e in self.expectations}

    def succeeded(self) -> bool:
        return (self.finished and all(self.caught().values())
                and self.deadlettered == self.malformed_sent)

    def summary(self) -> dict[str, Any]:
        topics = {} if self.settings is None else {
            "alerts": self.settings.topic_alerts, "deadletter": self.settings.topic_deadletter,
            "feedback": self.settings.topic_feedback}
        return {
            "run_id": self.run_id, "topics": topics, "worker_pid": self.worker_pid,
            "events_sent": dict(self.sent), "malformed_sent": self.malformed_sent,
            "malformed_sent_by_mistake": dict(self.malformed_kinds),
            "deadlettered": self.deadlettered, "consumed": self.consumed,
            "alerts_per_rule": dict(Counter(a["rule"] for a in self.alerts.values())),
            "alerts_acknowledged": self.lifecycle["acknowledged"],
            "alerts_escalated": self.lifecycle["escalated"],
            "alerts_auto_resolved": self.lifecycle["auto_resolved"],
            "survey_requests": {f"{action}: {reason}" if reason != "none" else action: count
                                for (action, reason), count in sorted(self.surveys.items())},
            "top_priorities": [{name: row[name] for name in (
                "rank", "issue", "customers", "silent", "value", "top_value_share")}
                for row in self.priorities],
            "incidents": {name: [a["alert_id"] for a in found]
                          for name, found in self.caught().items()},
            "finished": self.finished, "succeeded": self.succeeded(),
        }


def run_demo(settings: Settings, console: Console, options: DemoOptions) -> int:
    """Run the demo; return the process exit code (0: every incident caught)."""
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on SIGTERM as on Ctrl-C
    started_broker = _ensure_broker(settings, console)
    run_id = datetime.now(UTC).strftime("demo%Y%m%d%H%M%S") + secrets.token_hex(2)
    demo = _demo_settings(settings, run_id)
    start = datetime.now(UTC).replace(microsecond=0)
    simulation = simulate(options.config, start)
    records = list(simulation.records())
    rules_file = _write_rules(demo, records, options.config.duration)
    users_file, tokens = _write_users(demo)
    demo = load_settings({}, **{**_as_strings(demo), "rules_file": str(rules_file),
                                "users_file": str(users_file)})
    worker = WorkerProcess(_worker_env(demo), demo.data_dir / "worker.log", demo.web_port)
    run = DemoRun(simulation.expectations, run_id, demo,
                  malformed_sent=sum(1 for r in records if r.malformed),
                  malformed_kinds=Counter(r.malformed for r in records if r.malformed),
                  console_url=f"http://{demo.web_host}:{demo.web_port}/console",
                  console_token=tokens[DEMO_USER])
    try:
        asyncio.run(ensure_topics(demo))
        worker.start()
        run.worker_pid = worker.process.pid if worker.process else None
        console.print(f"run [bold]{run_id}[/]: topics {run_id}.cx.*, worker log "
                      f"{worker.log_path}")
        _wait_until_ready(worker, demo, console)
        _where_to_look(console, demo, run)
        asyncio.run(_live(console, demo, records, worker, run, options, tokens[DEMO_AGENT]))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the worker"
                      + (" and the broker" if started_broker and not options.keep_broker
                         else "") + "[/]")
        return 130
    except WorkerExited as exc:
        console.print(f"[red]the worker stopped:[/] {exc}")
        return 1
    finally:
        if worker.process is not None:
            worker.stop()
        if started_broker and not options.keep_broker:
            local_broker.stop(settings)
    _print_summary(console, run)
    if options.summary_file is not None:
        options.summary_file.write_text(json.dumps(run.summary(), indent=2))
    return 0 if run.succeeded() else 1


# -- set-up -------------------------------------------------------------------------------

def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

def _ensure_broker(settings: Settings, console: Console) -> bool:
    if asyncio.run(local_broker.is_serving(settings.bootstrap_servers)):
        console.print(f"using the Kafka broker at {settings.bootstrap_servers}")
        return False
    if not settings.uses_local_broker:
        raise SystemExit(f"cannot reach Kafka at {settings.bootstrap_servers}")
    console.print(f"starting a local Apache Kafka {settings.kafka_version} broker "
                  "(the first run downloads its jars)...")
    state = local_broker.start(settings)
    console.print(f"broker serving on {state.bootstrap_servers} (log: {state.log_file})")
    return True


def _demo_settings(settings: Settings, run_id: str) -> Settings:
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
        "web_port": str(_free_port_or(settings.web_host, settings.web_port)),
    }
    if settings.api_token is None:
        overrides["api_token"] = secrets.token_urlsafe(32)
    return load_settings({}, **{**_as_strings(settings), **overrides})


def _as_strings(settings: Settings) -> dict[str, str]:
    values = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        values[name] = value if isinstance(value, str) else (
            json.dumps(value) if isinstance(value, (list, dict)) else str(value))
    return values


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXSTREAM_")}
    env.update({f"CXSTREAM_{name.upper()}": value
                for name, value in _as_strings(settings).items()})
    return env


def _free_port_or(host: str, port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
            return port
        except OSError:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])


def _write_rules(settings: Settings, records: list[SimRecord], duration: float) -> Path:
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
#: the demo agent acknowledges one alert in this many, as a support team would
ACK_EVERY = 3


def _write_users(settings: Settings) -> tuple[Path, dict[str, str]]:
    """A users file with the console's demo user and the agent that acknowledges alerts."""
    tokens = {DEMO_USER: secrets.token_urlsafe(24), DEMO_AGENT: secrets.token_urlsafe(24)}
    users = {"users": [{"name": name, "token": token, "role": "lead", "teams": []}
                       for name, token in tokens.items()]}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "users.yaml"
    path.write_text(yaml.safe_dump(users, sort_keys=False))
    path.chmod(0o600)
    return path, tokens


def _wait_until_ready(worker: WorkerProcess, settings: Settings, console: Console) -> None:
    with console.status("waiting for the worker to join the group..."):
        worker.wait_for("cxstream_partitions_assigned", settings.partitions,
                        timeout=START_TIMEOUT)


def _where_to_look(console: Console, settings: Settings, run: DemoRun) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    console.print(Text.assemble(
        ("where to look while it runs:\n", "bold"),
        f"  console  {run.console_url}  (sign in as {DEMO_USER} with the token "
        f"{run.console_token})\n",
        f"  metrics  {base}/metrics\n",
        f"  scores   curl -H 'Authorization: Bearer {token}' {base}/api/scores/segment\n",
        f"  customer curl -H 'Authorization: Bearer {token}' {base}/api/customers/c-00001\n",
        f"  alerts   topic {settings.topic_alerts}; dead letters {settings.topic_deadletter}"))


# -- the live part ------------------------------------------------------------------------

async def _live(console: Console, settings: Settings, records: list[SimRecord],
                worker: WorkerProcess, run: DemoRun, options: DemoOptions,
                agent_token: str) -> None:
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    base = f"http://{settings.web_host}:{settings.web_port}"
    profiles = next((n for n, r in enumerate(records) if r.kind != "customers"), len(records))
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        board = Scoreboard()
        with Live(board.render(run, len(records)), console=console,
                  refresh_per_second=2, transient=False) as live:
            tail = asyncio.create_task(_tail_alerts(settings, run, live.console,
                                                    agent_token))
            refresh = asyncio.create_task(_refresh(client, board, run, live, options,
                                                   len(records), worker))

            async def profiles_read() -> None:
                while total(await _metrics(client), "cxstream_events_folded_total",
                            kind="customer") < profiles:
                    worker.check_running()
                    await asyncio.sleep(0.5)

            try:
                stats = await send_records(settings, records, 1.0, profiles_read,
                                           lambda record: run.sent.update([record.kind]))
                await _settle(client, run, worker, stats.sent)
                run.finished = True
                samples = await _metrics(client)
                for action in ("acknowledged", "escalated", "auto_resolved"):
                    run.lifecycle[action] = int(total(
                        samples, "cxstream_alert_lifecycle_changes_total", action=action))
                await board.update(client, run)
                live.update(board.render(run, len(records)))
                run.priorities = await _top_priorities(client)
            finally:
                refresh.cancel()
                tail.cancel()
                await asyncio.gather(refresh, tail, return_exceptions=True)


async def _settle(client: httpx.AsyncClient, run: DemoRun, worker: WorkerProcess,
                  sent: int) -> None:
    """Wait until every message is consumed, then for the incidents' alerts (bounded)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        worker.check_running()
        samples = await _metrics(client)
        run.consumed = int(total(samples, "cxstream_events_consumed_total"))
        run.deadlettered = int(total(samples, "cxstream_events_deadlettered_total"))
        run.surveys = survey_decisions(samples)
        if run.consumed >= sent and all(run.caught().values()):
            return
        await asyncio.sleep(1)


async def _refresh(client: httpx.AsyncClient, board: Scoreboard, run: DemoRun, live: Live,
                   options: DemoOptions, planned: int, worker: WorkerProcess) -> None:
    while True:
        await asyncio.sleep(options.refresh_seconds)
        worker.check_running()
        try:
            await board.update(client, run)
        except httpx.HTTPError:
            continue  # the worker is busy or rebalancing: keep the last board
        live.update(board.render(run, planned))


async def _top_priorities(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The three issues to fix first, by revenue at stake (none if the worker cannot
    answer: the summary says so)."""
    try:
        response = await client.get("/api/priorities", params={"limit": "3"})
    except httpx.HTTPError:
        return []
    rows: list[dict[str, Any]] = response.json()["issues"] if response.status_code == 200 \
        else []
    return rows


async def _metrics(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    response.raise_for_status()
    return parse_samples(response.text)


async def _tail_alerts(settings: Settings, run: DemoRun, console: Console,
                       agent_token: str) -> None:
    """Print each new alert and follow-up; the demo agent acknowledges some alerts."""
    consumer = AIOKafkaConsumer(settings.topic_alerts, **aiokafka_options(settings),
                                group_id=None, auto_offset_reset="earliest")
    base = f"http://{settings.web_host}:{settings.web_port}"
    acking: set[asyncio.Task[None]] = set()
    await consumer.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10, headers={
                "Authorization": f"Bearer {agent_token}"}) as agent:
            async for message in consumer:
                alert = json.loads(message.value)
                if alert.get("notice"):
                    console.print(alert_line(alert), highlight=False)
                    continue
                if alert["alert_id"] in run.alerts:
                    continue  # a later trigger folded into an alert already shown
                run.alerts[alert["alert_id"]] = alert
                console.print(alert_line(alert), highlight=False)
                if len(run.alerts) % ACK_EVERY == 0:
                    acking.add(task := asyncio.create_task(
                        _acknowledge(agent, alert["alert_id"])))
                    task.add_done_callback(acking.discard)
    finally:
        for task in acking:
            task.cancel()
        await consumer.stop()


async def _acknowledge(agent: httpx.AsyncClient, alert_id: str) -> None:
    """As a support agent would, a few seconds after the alert arrives."""
    await asyncio.sleep(3)
    for _ in range(5):  # the case may not be in the table yet
        try:
            response = await agent.post(f"/api/alerts/{alert_id}/ack", json={})
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code in (200, 409):
            return
        await asyncio.sleep(2)


def alert_line(alert: dict[str, Any]) -> Text:
    """One line: time, severity, rule, customer or segment, owner, summary."""
    color = {"critical": "bold red", "warning": "yellow"}.get(alert["severity"], "cyan")
    subject = (alert.get("customer_id") or (f"segment {alert['segment']}"
               if alert.get("segment") else str(alert["reason"].get("key", "group"))))
    when = alert["event_time"][11:19]
    if alert.get("notice"):
        return Text.assemble((f"{(alert.get('notice_at') or '')[11:19]} ", "dim"),
                             (f"{alert['notice'].upper():9} ", "magenta"),
                             (f"{alert['rule']:19} ", "bold"), f"{subject:16} ",
                             (f"→ {alert['owner']:16} ", "cyan"),
                             alert.get("notice_reason") or "")
    return Text.assemble((f"{when} ", "dim"), (f"{alert['severity'].upper():8} ", color),
                         (f"{alert['rule']:19} ", "bold"), f"{subject:16} ",
                         (f"→ {alert['owner']:16} ", "cyan"), alert["summary"])


class Scoreboard:
    """Today's NPS, CSAT and CES per segment, with sample sizes."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.updated: str = "-"

    async def update(self, client: httpx.AsyncClient, run: DemoRun) -> None:
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        for metric in SCORE_METRICS:
            response = await client.get("/api/scores/segment", params={"metric": metric})
            if response.status_code == 503:
                return  # partitions moving: keep the last board
            response.raise_for_status()
            for group in response.json()["groups"]:
                rows.setdefault(group["key"], {})[metric] = group
        samples = await _metrics(client)
        run.consumed = int(total(samples, "cxstream_events_consumed_total"))
        run.deadlettered = int(total(samples, "cxstream_events_deadlettered_total"))
        run.surveys = survey_decisions(samples)
        self.rows = rows
        self.updated = datetime.now(UTC).strftime("%H:%M:%S")

    def render(self, run: DemoRun, planned: int) -> Group:
        table = Table("segment", "NPS", "CSAT %", "CES", title=f"Today per segment "
                      f"(updated {self.updated})", title_justify="left")
        for segment, scores in sorted(self.rows.items()):
            table.add_row(segment, *(_cell(scores.get(metric)) for metric in SCORE_METRICS))
        sent = sum(run.sent.values())
        status = Text(f"sent {sent}/{planned}  consumed {run.consumed}  dead-lettered "
                      f"{run.deadlettered}  alerts {len(run.alerts)}", style="dim")
        return Group(table, status)


def survey_decisions(samples: Samples) -> Counter[tuple[str, str]]:
    """Survey decisions by (action, reason), over every survey."""
    found: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples.items():
        if name == "cxstream_survey_decisions_total" and value:
            named = dict(labels)
            found[named["action"], named["reason"]] += int(value)
    return found


def _cell(score: dict[str, Any] | None) -> str:
    if score is None:
        return "-"
    margin = score.get("margin_of_error")
    spread = "" if margin is None else f" ± {margin:.1f}"
    return f"{score['score']:.1f}{spread} (n={score['n']})"


def _print_summary(console: Console, run: DemoRun) -> None:
    summary = run.summary()
    table = Table("what", "count", title="Summary", title_justify="left")
    for kind, count in sorted(run.sent.items()):
        table.add_row(f"sent: {kind}", str(count))
    table.add_row("sent malformed (included above)", str(run.malformed_sent))
    table.add_row("dead-lettered", str(run.deadlettered))
    for rule, count in sorted(summary["alerts_per_rule"].items()):
        table.add_row(f"alerts: {rule}", str(count))
    table.add_row("alerts acknowledged", str(summary["alerts_acknowledged"]))
    table.add_row("alerts escalated", str(summary["alerts_escalated"]))
    table.add_row("alerts resolved by themselves", str(summary["alerts_auto_resolved"]))
    for what, count in summary["survey_requests"].items():
        table.add_row(f"survey requests {what.replace('_', ' ')}", str(count))
    console.print(table)
    top = Table("rank", "issue", "customers (silent)", "value at stake", "top band",
                title="What to fix first (cxstream priorities)", title_justify="left")
    for row in run.priorities:
        share = row["top_value_share"]
        top.add_row(str(row["rank"]), row["issue"], f"{row['customers']} ({row['silent']})",
                    f"{row['value']:,.0f}", "-" if share is None else f"{share:.0%}")
    if not run.priorities:
        top.add_row("-", "no priorities: the worker did not answer", "", "", "")
    console.print(top)
    incidents = Table("scripted incident", "caught", "by", title_justify="left")
    for name, found in run.caught().items():
        incidents.add_row(name, "[green]yes[/]" if found else "[red]no[/]",
                          ", ".join(sorted({a["rule"] for a in found})) or "-")
    incidents.add_row("malformed messages dead-lettered",
                      "[green]yes[/]" if run.deadlettered == run.malformed_sent else "[red]no[/]",
                      f"{run.deadlettered} of {run.malformed_sent}")
    console.print(incidents)
    if not run.finished:
        console.print("[yellow]the run did not finish: the summary covers what happened[/]")
