"""cxstream alerts: list, show and act on alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cxstream.alerts.lifecycle import due_text
from cxstream.cli.options import (
    ConfigOption,
    Output,
    OutputOption,
    TokenOption,
    UrlOption,
    api_call,
    console,
    print_json,
    settings_or_exit,
)

alerts_app = typer.Typer(help="Alerts and their lifecycle: list, show and act on them.",
                          no_args_is_help=True)


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"
    unresolved = "unresolved"


@alerts_app.command("list")
def alerts_list(
    owner: Annotated[str | None, typer.Option(help="Only this owner's")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's")] = None,
    status: Annotated[AlertStatus | None, typer.Option(
        help="Only this status (unresolved: all but resolved)")] = AlertStatus.unresolved,
    severity: Annotated[Severity | None, typer.Option(help="Only this severity")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's")] = None,
    customer_id: Annotated[str | None, typer.Option(help="Only this customer's")] = None,
    limit: Annotated[int, typer.Option(help="At most this many", min=1, max=500)] = 50,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Alerts, the soonest due first (then severity, then customer value)."""
    settings = settings_or_exit(config=config)
    params = {name: str(value) for name, value in {
        "owner": owner, "team": team, "status": status, "severity": severity, "rule": rule,
        "customer_id": customer_id}.items() if value is not None}
    params["limit"] = str(limit)
    found = api_call(settings, url, "/api/alerts", params, token=token)
    if output is Output.json:
        print_json(found)
        return
    table = Table("due", "severity", "rule", "subject", "owner", "status", "alert id",
                  title=f"{len(found['alerts'])} of {found['total']} alerts")
    for row in found["alerts"]:
        table.add_row(due_text(row["due_in_seconds"]), row["severity"], row["rule"],
                      row["customer_id"] or row["segment"] or "group", row["owner"],
                      row["status"], row["alert_id"])
    console.print(table)


AlertIdArgument = Annotated[str, typer.Argument(help="The alert_id")]


@alerts_app.command("show")
def alerts_show(alert_id: AlertIdArgument, url: UrlOption = None, token: TokenOption = None,
                config: ConfigOption = None, output: OutputOption = Output.text) -> None:
    """One alert: its state, why it fired, and its history."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    found = api_call(settings, url, f"/api/alerts/{quote(alert_id, safe='')}", token=token)
    if output is Output.json:
        print_json(found)
        return
    alert = found["alert"]
    console.print(f"[bold]{alert['alert']['summary']}[/]\n{alert['severity']} · "
                  f"{alert['status']} · owner {alert['owner']} (team {alert['team']}) · "
                  f"{due_text(alert['due_in_seconds'])}")
    for name, value in alert["alert"]["reason"].items():
        console.print(f"  {name}: {value}")
    history = Table("when", "what", "who", "why", title="history")
    for change in found["history"]:
        history.add_row(change["at"], change["action"], change["actor"],
                        change.get("reason") or "")
    console.print(history)


def _act(alert_id: str, action: str, body: dict[str, Any], url: str | None,
         token: str | None, config: Path | None, output: Output) -> None:
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    done = api_call(settings, url, f"/api/alerts/{quote(alert_id, safe='')}/{action}",
                    method="POST", token=token, body=body)
    if output is Output.json:
        print_json(done)
        return
    change = done["change"]
    console.print(f"{alert_id}: {change['action']} by {change['actor']} "
                  f"(now {done['alert']['status']}, owner {done['alert']['owner']})")


@alerts_app.command("ack")
def alerts_ack(alert_id: AlertIdArgument, url: UrlOption = None, token: TokenOption = None,
               config: ConfigOption = None, output: OutputOption = Output.text) -> None:
    """Acknowledge an alert: you are on it (its resolve deadline starts)."""
    _act(alert_id, "ack", {}, url, token, config, output)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: AlertIdArgument,
    category: Annotated[str, typer.Option(
        help="One of the rules file's lifecycle.resolution_categories")],
    note: Annotated[str | None, typer.Option(help="What was done")] = None,
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Resolve an alert, with how."""
    _act(alert_id, "resolve", {"category": category, "note": note}, url, token, config,
         output)


@alerts_app.command("assign")
def alerts_assign(
    alert_id: AlertIdArgument,
    to: Annotated[str, typer.Option(help="A user or a team")],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Give an alert to someone else."""
    _act(alert_id, "assign", {"to": to}, url, token, config, output)


@alerts_app.command("note")
def alerts_note(
    alert_id: AlertIdArgument,
    text: Annotated[str, typer.Argument(help="The note")],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Add a note to an alert's history."""
    _act(alert_id, "note", {"text": text}, url, token, config, output)


@alerts_app.command("snooze")
def alerts_snooze(
    alert_id: AlertIdArgument,
    hours: Annotated[float, typer.Option(help="For this many hours", min=0.01)],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Put an alert aside until later (no escalation meanwhile)."""
    until = datetime.now(UTC) + timedelta(hours=hours)
    _act(alert_id, "snooze", {"until": until.isoformat()}, url, token, config, output)
