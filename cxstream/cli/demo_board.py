"""What the demo saw and shows: the run's record (``DemoRun``), alert lines, the live
scoreboard of today's scores per segment, and the closing summary (cli.demo runs it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cxstream.cli.scrape import Samples, parse_samples, total
from cxstream.cli.simulator.incidents import Expectation
from cxstream.streams.settings import Settings

SCORE_METRICS = ("nps", "csat", "ces")


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
    #: the prediction model's evaluation (None: trained none)
    model: dict[str, Any] | None = None

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
                "rank", "issue", "customers", "silent", "value", "largest_share",
                "top_value_share")}
                for row in self.priorities],
            "incidents": {name: [a["alert_id"] for a in found]
                          for name, found in self.caught().items()},
            "model": self.model,
            "finished": self.finished, "succeeded": self.succeeded(),
        }


async def metrics_of(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    response.raise_for_status()
    return parse_samples(response.text)


def alert_line(alert: dict[str, Any]) -> Text:
    """One line: time, severity, rule, customer or segment, owner, summary."""
    color = {"critical": "bold red", "warning": "yellow"}.get(alert["severity"], "cyan")
    reason = alert["reason"]
    subject = (alert.get("customer_id") or (f"segment {alert['segment']}"
               if alert.get("segment") else f"{reason['dimension']} {reason['key']}"
               if reason.get("dimension") else str(reason.get("key", "group"))))
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
        samples = await metrics_of(client)
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


def print_summary(console: Console, run: DemoRun) -> None:
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
    top = Table("rank", "customers (silent)", "value at stake", "largest account",
                title="What to fix first (cxstream priorities)", title_justify="left")
    top.add_column("issue", no_wrap=True)  # whole, even in an 80-column terminal
    for row in run.priorities:
        largest = row.get("largest_share")
        top.add_row(str(row["rank"]), f"{row['customers']} ({row['silent']})",
                    f"{row['value']:,.0f}", "-" if largest is None else f"{largest:.0%}",
                    row["issue"])
    if not run.priorities:
        top.add_row("-", "", "", "", "no priorities: the worker did not answer")
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
