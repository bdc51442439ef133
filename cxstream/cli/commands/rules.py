"""cxstream rules: judge a change of the rules file on history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    Output,
    OutputOption,
    console,
    err_console,
    fail,
    print_json,
    settings_or_exit,
)

rules_app = typer.Typer(help="The alert rules file: judge a change on history.",
                         no_args_is_help=True)


SinceOption = Annotated[str, typer.Option(
    help="Replay the inputs stored since: a span back from now (30d, 12h) or an ISO time "
         "with offset")]
AgainstOption = Annotated[Path | None, typer.Option(
    help="The rules file to compare with (default: the current one, CXSTREAM_RULES_FILE, "
         "else the shipped rules)")]


def history_and_rules(settings: Any, rules: Path, against: Path | None, since: str
                      ) -> tuple[datetime, list[Any], tuple[tuple[str, Any], tuple[str, Any]]]:
    """(start, the inputs to replay, ((name, current rules), (name, proposed rules))) of
    a backtest; a bad --since or rules file exits 2."""
    from cxstream.alerts.config import RulesError, load_rules
    from cxstream.cli import backtest as bt

    try:
        start = bt.parse_since(since, datetime.now(UTC))
        proposed = load_rules(rules)
        current_path = against or settings.rules_file
        current = load_rules(current_path)
    except (ValueError, RulesError) as exc:
        raise fail(str(exc), 2) from exc
    with err_console.status("reading the input topics"):
        inputs = list(bt.merged(asyncio.run(bt.read_history(settings, start.timestamp()))))
    return start, inputs, ((str(current_path or "shipped rules"), current),
                           (str(rules), proposed))


@rules_app.command("backtest")
def rules_backtest(
    rules: Annotated[Path, typer.Option(help="The rules file to judge (YAML or TOML)")],
    since: SinceOption = "30d",
    against: AgainstOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Replay the input topics through the fold and the rules a worker runs (no Faust,
    nothing sent) and count the alerts each rules file would have raised, per rule,
    severity and owner, with examples."""
    from cxstream.cli import backtest as bt

    settings = settings_or_exit(bootstrap_servers, config)
    start, inputs, named = history_and_rules(settings, rules, against, since)
    current, proposed = _replay_both(settings, inputs, named)
    compared = bt.comparison(current, proposed)
    if output is Output.json:
        print_json({"since": start.isoformat(), "current": bt.report_json(current),
                    "proposed": bt.report_json(proposed), "comparison": compared})
        return
    _print_comparison(start, current, proposed, compared)


def _replay_both(settings: Any, inputs: list[Any], rules: Any) -> list[Any]:
    """The backtest report of each (name, rules), with a progress bar on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cxstream.cli import backtest as bt

    reports = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True,
                  disable=not err_console.is_terminal) as progress:
        for name, config_ in rules:
            task = progress.add_task(f"replaying with {Path(name).name}", total=len(inputs))

            def advance(n: int, task: Any = task) -> None:
                progress.advance(task, n)

            replay = bt.Replay(settings, config_, name)
            reports.append(asyncio.run(replay.run(inputs, advance)))
    return reports


def _print_comparison(start: datetime, current: Any, proposed: Any,
                      compared: list[dict[str, Any]]) -> None:
    from cxstream.cli import backtest as bt

    console.print(f"{proposed.inputs} inputs from {proposed.first_record or '-'} to "
                  f"{proposed.last_record or '-'} ({proposed.rejected} invalid, left out)")
    table = Table("rule", "severity", "owner", "current", "proposed", "change",
                  title=f"alerts that would have fired since {start.isoformat()}")
    for row in compared:
        table.add_row(row["rule"], row["severity"], row["owner"], str(row["current"]),
                      str(row["proposed"]), row["change"])
    console.print(table)
    if not compared:
        console.print("no alert would have fired with either rules file")
    for group in bt.report_json(proposed)["groups"]:
        console.print(f"[bold]{group['rule']}[/] {group['severity']} to {group['owner']}: "
                      f"{group['alerts']} alerts, for example")
        for example in group["examples"]:
            console.print(f"  {example['event_time'][:16]}  {example['summary']}")
