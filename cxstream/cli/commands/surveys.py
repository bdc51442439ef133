"""cxstream surveys: judge a change of the survey policy on history."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cxstream.cli.commands.rules import AgainstOption, SinceOption, history_and_rules
from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    Output,
    OutputOption,
    console,
    err_console,
    print_json,
    settings_or_exit,
)

surveys_app = typer.Typer(help="The survey policy of the rules file: judge a change on "
                               "history.", no_args_is_help=True)


@surveys_app.command("backtest")
def surveys_backtest(
    rules: Annotated[Path, typer.Option(help="The rules file whose surveys section to "
                                             "judge (YAML or TOML)")],
    since: SinceOption = "30d",
    against: AgainstOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Replay the input topics through the survey policy a worker runs (no Faust, nothing
    sent) and count the requests each rules file would have sent, deferred and
    suppressed, by reason, segment and trigger."""
    from cxstream.cli import survey_backtest as sb

    settings = settings_or_exit(bootstrap_servers, config)
    start, inputs, named = history_and_rules(settings, rules, against, since)
    with err_console.status(f"replaying {len(inputs)} inputs with each policy"):
        current, proposed = (asyncio.run(sb.replay_surveys(settings, rules_, name, inputs))
                             for name, rules_ in named)
    compared = sb.comparison(current, proposed)
    if output is Output.json:
        print_json({"since": start.isoformat(), "current": sb.report_json(current),
                    "proposed": sb.report_json(proposed), "comparison": compared})
        return
    _print(start, current, proposed, compared)


def _print(start: datetime, current: Any, proposed: Any, compared: list[dict[str, Any]]
           ) -> None:
    from cxstream.cli import survey_backtest as sb

    console.print(f"{proposed.inputs} inputs since {start.isoformat()}: "
                  f"{current.totals()['asked']} requests asked with the current policy, "
                  f"{proposed.totals()['asked']} with the proposed one")
    table = Table("outcome", "reason", "current", "proposed",
                  title="what each policy would have done with the requests its triggers "
                        "asked for")
    for row in compared:
        table.add_row(row["outcome"], row["reason"], str(row["current"]),
                      str(row["proposed"]))
    console.print(table)
    detail = Table("outcome", "reason", "segment", "trigger", "requests",
                   title="the proposed policy, by segment and trigger")
    for row in sb.report_json(proposed)["requests"]:
        detail.add_row(row["outcome"], row["reason"], row["segment"], row["trigger"],
                       str(row["requests"]))
    console.print(detail)
