"""cxstream scores, priorities and recompute: group scores, issues ranked, tallies recomputed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    Output,
    OutputOption,
    UrlOption,
    api_call,
    console,
    fail,
    print_json,
    settings_or_exit,
)


class Dimension(StrEnum):
    """The group dimensions (scoring.groups.DIMENSIONS; a test compares)."""

    segment = "segment"
    channel = "channel"
    touchpoint = "touchpoint"
    stage = "stage"
    agent = "agent"


class Metric(StrEnum):
    nps = "nps"
    csat = "csat"
    ces = "ces"


def scores(
    dimension: Annotated[Dimension, typer.Argument(help="The group dimension")],
    key: Annotated[str | None, typer.Argument(help="One group; omit to rank all groups")] = None,
    window: Annotated[str, typer.Option(
        help="hour, day or the long window (CXSTREAM_LONG_WINDOW_DAYS, e.g. 7d)")] = "day",
    metric: Annotated[Metric, typer.Option(help="The ranking's metric")] = Metric.nps,
    min_n: Annotated[int, typer.Option(help="Leave out groups with fewer answers",
                                       min=1)] = 1,
    at: Annotated[datetime | None, typer.Option(
        help="ISO time with offset (default: now)",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"])] = None,
    answers: Annotated[bool, typer.Option(
        "--answers", help="With KEY: the group's recent answers of --metric in the "
        "current --window, newest first, with their comments (leads and admins)")] = False,
    comments_only: Annotated[bool, typer.Option(
        "--comments-only", help="With --answers: only answers with a comment")] = False,
    drivers: Annotated[bool, typer.Option(
        "--drivers", help="With KEY: what moved the group's scores between the previous "
        "day and the current one, part by part (--by)")] = False,
    by: Annotated[str | None, typer.Option(
        help="With --drivers: the parts' dimension (a segment: touchpoint, channel or "
        "stage; default: the first)")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Scores of one group (current and previous windows), or groups ranked by a metric."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    windows = ("hour", "day", f"{settings.long_window_days}d")
    if window not in windows:  # checked before any request
        raise fail(f"--window: {window!r} is not one of {', '.join(windows)}", 2)
    if (answers or comments_only or drivers or by) and key is None:
        raise fail("--answers, --comments-only, --drivers and --by need a group KEY", 2)
    params = {"window": window, "metric": metric.value, "min_n": str(min_n)}
    if at:
        params["at"] = at.isoformat()
    if answers or comments_only or drivers or by:
        _details(settings, url, f"/api/scores/{dimension.value}/{quote(str(key), safe='')}",
                 {"window": window, "survey": metric.value,
                  "comments": "only" if comments_only else "all",
                  **({"at": params["at"]} if at else {})},
                 by if drivers or by else None, drivers or bool(by), output)
        return
    if key is not None:
        report = api_call(settings, url,
                          f"/api/scores/{dimension.value}/{quote(key, safe='')}",
                          {"at": params["at"]} if at else None)
        if output is Output.json:
            print_json(report)
        else:
            _print_group(report)
        return
    ranked = api_call(settings, url, f"/api/scores/{dimension.value}", params)
    if output is Output.json:
        print_json(ranked)
        return
    _print_ranking(ranked, dimension.value, metric.value, window)


def _print_ranking(ranked: dict[str, Any], dimension_name: str, metric_name: str,
                   window: str) -> None:
    table = Table("rank", dimension_name, metric_name.upper(), "n", "± (95 %)", "previous",
                  "change (± its margin)",
                  title=f"{dimension_name} by {metric_name.upper()}, {window} from "
                  f"{ranked['start']}")
    for rank, row in enumerate(ranked["groups"], 1):
        previous = row.get("previous")
        table.add_row(str(rank), row["key"], f"{row['score']:g}", str(row["n"]),
                      "" if row["margin_of_error"] is None else f"{row['margin_of_error']:g}",
                      "-" if previous is None else f"{previous['score']:g} (n={previous['n']})",
                      change_text(row.get("change")))
    console.print(table)
    console.print("A change marked 'noise' is within its margin: the samples alone give "
                  "differences that large more than 1 time in 20.", style="dim")


def change_text(change: dict[str, Any] | None) -> str:
    """A change with its margin; one within the margin says so, uncoloured."""
    if change is None:
        return "-"
    margin = "?" if change["margin"] is None else f"{change['margin']:g}"
    text = f"{change['value']:+g} (± {margin})"
    if not change["significant"]:
        return f"{text} noise"
    return f"[{'green' if change['direction'] == 'up' else 'red'}]{text}[/]"


class RankBy(StrEnum):
    value = "value"
    customers = "customers"
    mix = "mix"


class IssueKind(StrEnum):
    touchpoint = "touchpoint"
    topic = "topic"


def priorities(
    rank_by: Annotated[RankBy | None, typer.Option(
        help="value: revenue at stake; customers; mix (default: the rules file's)")] = None,
    kind: Annotated[IssueKind | None, typer.Option(
        help="Only touchpoints or only topics (default: both)")] = None,
    by_area: Annotated[bool, typer.Option(help="Sum the issues per CX area")] = False,
    limit: Annotated[int, typer.Option(help="At most this many issues", min=1,
                                       max=500)] = 20,
    at: Annotated[datetime | None, typer.Option(
        help="ISO time with offset in the current or previous window (default: now)",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"])] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Issues to fix first: the customers each touchpoint or topic hurt in the current
    window (silent ones too) and the revenue they carry, with the trend."""
    settings = settings_or_exit(config=config)
    params = {"limit": str(limit), "by": "area" if by_area else "issue"}
    if rank_by is not None:
        params["rank_by"] = rank_by.value
    if kind is not None:
        params["kind"] = kind.value
    if at is not None:
        params["at"] = at.isoformat()
    ranked = api_call(settings, url, "/api/priorities", params)
    if output is Output.json:
        print_json(ranked)
        return
    table = Table("rank", "issue", "customers", "silent (predicted)", "value at stake",
                  "largest account", "top band", "previous", "trend",
                  title=f"priorities by {ranked['rank_by']}, window from "
                  f"{ranked['window']['start'][:16].replace('T', ' ')} "
                  f"({ranked['total']} issues)")
    for row in ranked["issues"]:
        share = row["top_value_share"]
        previous = row["previous"]
        table.add_row(
            str(row["rank"]), row["issue"],
            f"{row['customers']}" + (" (few)" if row["few"] else ""),
            f"{row['silent']} ({row.get('predicted_at_risk', 0)})",
            f"{row['value']:,.2f}", _largest(row), "-" if share is None else f"{share:.0%}",
            "-" if previous is None else f"{previous['customers']} / {previous['value']:,.2f}",
            row["trend"])
    console.print(table)
    if not ranked["issues"]:
        console.print("no negative signals in this window")


def _largest(row: dict[str, Any]) -> str:
    """An issue's largest account and its share of the value at stake."""
    share = row.get("largest_share")
    return "-" if share is None else f"{row['largest_value']:,.0f} ({share:.0%})"


def _print_group(report: dict[str, Any]) -> None:
    table = Table("window", "start", "NPS (n, ±)", "CSAT % (n, ±)", "CES mean (n, ±)",
                  title=f"{report['dimension']} {report['key']}")
    for name, pair in report["windows"].items():
        for which in ("current", "previous"):
            row = pair[which]
            table.add_row(f"{name} {which}", row["start"][:16].replace("T", " "),
                          *(_cell(row[metric]) for metric in ("nps", "csat", "ces")))
        table.add_row(f"{name} change", "", *(change_text(pair["change"][metric])
                                             for metric in ("nps", "csat", "ces")))
    console.print(table)


def _details(settings: Any, url: str | None, group_path: str, params: dict[str, str],
             by: str | None, drivers: bool, output: Output) -> None:
    """A group's drivers (``drivers``) or its recent answers."""
    if drivers:
        found = api_call(settings, url, f"{group_path}/drivers", {
            **({"by": by} if by else {}), **({"at": params["at"]} if "at" in params else {})})
        _print_drivers(found, params["survey"], output)
        return
    _print_answers(api_call(settings, url, f"{group_path}/answers",
                            {**params, "limit": "100"}), output)


def _print_drivers(found: dict[str, Any], metric: str, output: Output) -> None:
    if output is Output.json:
        print_json(found)
        return
    report = found["metrics"][metric]
    change = "-" if report["change"] is None else f"{report['change']:+g}"
    table = Table(found["by"], "points", "own change", "share change", "answers",
                  f"{metric.upper()} now", "before",
                  title=f"{found['dimension']} {found['key']}: {metric.upper()} "
                  f"{report['previous_score']} -> {report['score']} ({change}), "
                  f"{found['window']} from {found['start'][:16].replace('T', ' ')}")
    for driver in report["drivers"]:
        table.add_row(driver["part"], f"{driver['points']:+g}", f"{driver['rate']:+g}",
                      f"{driver['mix']:+g}",
                      f"{driver['answers']} ({driver['previous_answers']})"
                      + (" too few" if driver["few"] else ""),
                      _number(driver["score"]), _number(driver["previous_score"]))
    console.print(table)
    console.print(f"The points add up to the change. Parts with fewer than "
                  f"{found['min_answers']} answers are marked too few and never named"
                  + (f"; named: {report['summary']}" if report["summary"] else ""),
                  style="dim")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _print_answers(found: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        print_json(found)
        return
    table = Table("at", "customer", "survey", "score", "comment",
                  title=f"{found['dimension']} {found['key']}: {len(found['answers'])} of "
                  f"{found['total']} recent answers")
    for answer in found["answers"]:
        table.add_row(answer["at"][:16].replace("T", " "), answer["customer_id"],
                      answer["survey"], str(answer["score"]), answer["comment"] or "-")
    console.print(table)
    console.print(f"Each worker keeps the latest {found['kept_per_partition']} answers per "
                  "group and input partition (CXSTREAM_GROUP_ANSWERS_KEPT).", style="dim")


def _cell(score: dict[str, Any] | None) -> str:
    if score is None:
        return "-"
    margin = score["margin_of_error"]
    return f"{score['score']:g} ({score['n']}, ±{'?' if margin is None else f'{margin:g}'})"


def recompute(
    compare: Annotated[bool, typer.Option(help="Compare with the running workers' tallies")]
    = True,
    url: UrlOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Recompute every group tally from the input topics (no Faust) and compare.

    Exit 0 when the stream and the batch agree exactly, 1 with the differences otherwise.
    """
    from cxstream.cli.consistency import batch_tallies, differences, stream_tallies

    settings = settings_or_exit(bootstrap_servers, config)
    expected = batch_tallies(settings)
    if not compare:
        tallies = [[*slot, tally.model_dump()] for slot, tally in sorted(expected.items())]
        if output is Output.json:
            print_json(tallies)
        else:
            console.print_json(data=tallies)
        return
    token = settings.api_token.get_secret_value() if settings.api_token else None
    actual = stream_tallies(url or f"http://{settings.web_host}:{settings.web_port}", token)
    found = differences(expected, actual)
    if output is Output.json:
        print_json({"group_windows": len(set(expected) | set(actual)), "differences": found})
        if found:
            raise typer.Exit(1)
        return
    if found:
        console.print_json(data=found)
        raise fail(f"{len(found)} of {len(set(expected) | set(actual))} group windows differ")
    console.print(f"stream and batch agree on all {len(expected)} group windows")
