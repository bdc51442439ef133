"""cxstream simulate, replay and demo: simulated customers, sent or written, and the demo."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    console,
    err_console,
    fail,
    settings_or_exit,
)
from cxstream.streams.settings import Settings

CustomersOption = Annotated[int, typer.Option(help="Customers in the base")]
RateOption = Annotated[float, typer.Option(help="Live events per second (mean)")]
DurationOption = Annotated[float, typer.Option(help="Seconds of live traffic")]
SeedOption = Annotated[int, typer.Option(help="Same seed and start: same events")]
HistoryDaysOption = Annotated[int, typer.Option(help="Days of past traffic sent first")]


def _sim_config_or_exit(**values: Any) -> Any:
    from pydantic import ValidationError

    from cxstream.cli.simulator.generator import SimConfig

    try:
        return SimConfig(**values)
    except ValidationError as exc:
        for error in exc.errors():
            field = "--" + "-".join(str(part) for part in error["loc"]).replace("_", "-")
            err_console.print(f"[bold red]cxstream:[/] {field}: {error['msg']}",
                              highlight=False)
        raise typer.Exit(2) from exc


def simulate(
    customers: CustomersOption = 2000,
    rate: RateOption = 40.0,
    duration: DurationOption = 180.0,
    seed: SeedOption = 7,
    start: Annotated[datetime | None, typer.Option(
        help="Event time of the live start, ISO 8601 with offset (default: now)",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"])] = None,
    history_days: HistoryDaysOption = 7,
    history_per_day: Annotated[int, typer.Option(help="Past events per day")] = 400,
    malformed_share: Annotated[float, typer.Option(help="Share of malformed messages")] = 0.02,
    incidents: Annotated[bool, typer.Option(help="Play the scripted incidents")] = True,
    out: Annotated[Path | None, typer.Option(
        help="Write JSON Lines here instead of sending ('-': standard output)")] = None,
    fast: Annotated[bool, typer.Option(
        help="Send as fast as possible instead of at the simulated pace")] = False,
    bootstrap_servers: BootstrapOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Simulate a customer base and its traffic, with incidents the alerts should catch.

    Profiles go first (the command waits until the workers have read them, up to 60 s),
    then the history, then live traffic at its pace. With --out nothing is sent."""
    from cxstream.cli.simulator.generator import simulate as build

    config = _sim_config_or_exit(
        customers=customers, rate=rate, duration=duration, seed=seed, start=start,
        history_days=history_days, history_per_day=history_per_day,
        malformed_share=malformed_share, incidents=incidents)
    simulation = build(config, datetime.now(UTC).replace(microsecond=0))
    estimate = (config.customers + config.history_days * config.history_per_day
                + round(config.rate * config.duration))
    if out is not None:
        _write_simulation(simulation, out, estimate)
    else:
        _send_simulation(settings_or_exit(bootstrap_servers, config_file), simulation.records(),
                         estimate,
                         None if fast else 1.0)
    for expectation in simulation.expectations:
        err_console.print(f"scripted: {expectation.incident} -> {expectation.rule}",
                          highlight=False)


def _write_simulation(simulation: Any, out: Path, estimate: int) -> None:
    from cxstream.cli.simulator.sending import write_jsonl

    if str(out) == "-":
        write_jsonl(simulation.records(), sys.stdout)
        return
    with _progress(estimate, f"writing {out}") as advance, out.open("w",
                                                                   encoding="utf-8") as file:
        written = write_jsonl(simulation.records(), file, lambda record: advance())
    err_console.print(f"wrote {written} records to {out}")


def _send_simulation(settings: Settings, records: Any, estimate: int,
                     speed: float | None) -> None:
    from cxstream.cli.simulator.sending import send_records, wait_for_group
    from cxstream.streams.kafka.topic_admin import ensure_topics

    async def profiles_read() -> None:
        if not await wait_for_group(settings, settings.topic_customers, timeout=60):
            err_console.print(f"no worker of group {settings.app_id} read the profiles "
                              "within 60 s; sending the rest anyway")

    async def run(advance: Any) -> Any:
        await ensure_topics(settings)
        return await send_records(settings, records, speed, profiles_read,
                                  lambda record: advance())

    with _progress(estimate, "sending") as advance:
        stats = asyncio.run(run(advance))
    err_console.print(f"sent {stats.sent} messages ({stats.malformed} malformed): "
                      + ", ".join(f"{kind} {count}" for kind, count in
                                  sorted(stats.per_kind.items())))


class _progress:
    """A rich progress bar when the output is a terminal; nothing otherwise."""

    def __init__(self, total: int, description: str) -> None:
        from rich.progress import Progress

        self.bar = Progress(console=err_console, transient=False,
                            disable=not err_console.is_terminal)
        self.task = self.bar.add_task(description, total=total)

    def __enter__(self) -> Any:
        self.bar.start()
        return lambda: self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def replay(
    path: Annotated[Path, typer.Argument(help="JSON Lines from cxstream simulate --out",
                                         exists=True, dir_okay=False)],
    speed: Annotated[float, typer.Option(help="1: original pace, 10: ten times faster")] = 1.0,
    fast: Annotated[bool, typer.Option(help="As fast as possible")] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Send a simulated file at its original pace, faster, or as fast as possible."""
    from cxstream.cli.simulator.sending import ReplayFileError, read_jsonl

    if speed <= 0:
        raise fail("--speed: must be greater than 0", 2)
    settings = settings_or_exit(bootstrap_servers, config)
    try:
        count = sum(1 for _ in read_jsonl(path))  # every line checked before sending any
    except ReplayFileError as exc:
        raise fail(str(exc), 2) from exc
    _send_simulation(settings, read_jsonl(path), count, None if fast else speed)


def demo(
    customers: CustomersOption = 2000,
    rate: RateOption = 40.0,
    duration: DurationOption = 180.0,
    seed: SeedOption = 7,
    history_days: HistoryDaysOption = 2,
    keep_broker: Annotated[bool, typer.Option(
        help="Leave a broker the demo started running")] = False,
    summary_json: Annotated[Path | None, typer.Option(
        help="Also write the summary as JSON here")] = None,
    bootstrap_servers: BootstrapOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Start Kafka (unless one is configured), a worker and the simulator; show alerts as
    they fire and a scoreboard per segment; end with what was caught. Exit code 0 when
    every scripted incident raised its alert and every malformed message was
    dead-lettered. Ctrl-C stops everything it started."""
    from cxstream.cli.demo import DemoOptions, run_demo

    settings = settings_or_exit(bootstrap_servers, config_file)
    from cxstream.cli.simulator.config import DEMO_HISTORY

    # the same company whatever the hour it is run (generator.DEMO_HISTORY): a flat rate
    # (with the daily rhythm, a run at night had a tenth of the traffic against the same
    # incidents), a history ending at midnight
    config = _sim_config_or_exit(customers=customers, rate=rate, duration=duration,
                                 seed=seed, **{**DEMO_HISTORY, "history_days": history_days})
    sys.exit(run_demo(settings, console, DemoOptions(config, keep_broker=keep_broker,
                                                     summary_file=summary_json)))
