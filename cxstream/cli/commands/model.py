"""cxstream model: train the prediction model on the input topics' history, and report how
it does (docs/predictions.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cxstream.cli.commands.rules import SinceOption
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

model_app = typer.Typer(help="The prediction model: train it on history, report how it "
                             "does.", no_args_is_help=True)
ModelOption = Annotated[Path, typer.Option("--model", help="The model file")]


@model_app.command("train")
def model_train(
    out: Annotated[Path, typer.Option(help="Where to write the model file")],
    since: SinceOption = "90d",
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Replay the input topics in event-time order, build each answer's features from
    what came before it, fit a calibrated logistic regression on the older answers and
    evaluate it on the latest fifth; write the model file (needs the ``model`` extra)."""
    from cxstream.cli import backtest as bt

    settings = settings_or_exit(bootstrap_servers, config)
    try:
        start = bt.parse_since(since, datetime.now(UTC))
        from cxstream.cli.model_training import train
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    except ImportError as exc:
        raise fail(f"training needs scikit-learn: pip install 'cxstream[model]' ({exc})",
                   2) from exc
    from cxstream.alerts.config import load_rules
    from cxstream.scoring.features import Thresholds

    rules = settings.fold_rules(load_rules(settings.rules_file).journey)
    with err_console.status("reading the input topics"):
        inputs = list(bt.merged(asyncio.run(bt.read_history(settings, start.timestamp()))))
    with err_console.status(f"training on {len(inputs)} inputs"):
        try:
            file, read = train(inputs, settings.input_kinds(), settings.max_event_bytes,
                               rules.journey, Thresholds.of(rules.state), start)
        except ValueError as exc:
            raise fail(str(exc), 1) from exc
    out.write_text(file.model_dump_json(indent=1) + "\n", encoding="utf-8")
    if output is Output.json:
        print_json({"model": str(out), "model_version": file.version(),
                    "evaluation": file.evaluation, "read": read})
        return
    console.print(f"wrote {out} (model version {file.version()}): {read['answers']} "
                  f"answers of {read['events']} events")
    _print_evaluation(file.evaluation)


@model_app.command("report")
def model_report(
    model: ModelOption,
    metrics_url: Annotated[str | None, typer.Option(
        help="A worker's /metrics, for the live figures of this week")] = None,
    output: OutputOption = Output.text,
) -> None:
    """The model file's training evaluation and, from a worker's metrics, how its
    predictions do against this week's answers."""
    from cxstream.scoring.prediction import Model, ModelMismatch

    try:
        loaded = Model.load(model)
    except ModelMismatch as exc:
        raise fail(str(exc), 2) from exc
    live = None if metrics_url is None else _live(metrics_url, loaded.version)
    if output is Output.json:
        print_json({"model_version": loaded.version, "trained": loaded.file.trained,
                    "evaluation": loaded.evaluation, "live": live})
        return
    console.print(f"model version {loaded.version}, trained {loaded.file.trained['at']} "
                  f"on answers from {loaded.file.trained['from']} to "
                  f"{loaded.file.trained['to']}")
    _print_evaluation(loaded.evaluation)
    if live is not None:
        console.print(f"live, this week ({metrics_url}): {live['week_answers']:.0f} answers, "
                      f"AUC {_figure(live['auc'])}, Brier {_figure(live['brier'])}; "
                      f"{live['answers']:.0f} answers compared since the worker started")


def _live(url: str, version: str) -> dict[str, Any]:
    from cxstream.cli.scrape import scrape, total

    samples = scrape(url)
    labels = (("model_version", version),)
    return {"auc": samples.get(("cxstream_prediction_live_auc", labels)),
            "brier": samples.get(("cxstream_prediction_live_brier", labels)),
            "week_answers": samples.get(("cxstream_prediction_live_week_answers", labels),
                                        0.0),
            "answers": total(samples, "cxstream_prediction_answers_total",
                             model_version=version)}


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_evaluation(evaluation: dict[str, Any]) -> None:
    from rich.table import Table

    answers = evaluation["answers"]
    console.print(f"time-split test on the latest {answers['test']} answers (trained on "
                  f"{answers['training']}, calibrated on {answers['calibration']}): "
                  f"AUC {evaluation['auc']:.3f}, Brier {evaluation['brier']:.4f}")
    table = Table("decile", "predicted low %", "observed low %", "answers")
    for number, decile in enumerate(evaluation["deciles"], 1):
        table.add_row(str(number), f"{decile['predicted'] * 100:.1f}",
                      f"{decile['observed'] * 100:.1f}", str(decile["answers"]))
    console.print(table)
