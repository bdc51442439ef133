"""cxstream send and cxstream deadletter: events into the input topics, and the dead letters out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cxstream.cli.options import (
    BootstrapOption,
    ConfigOption,
    Output,
    OutputOption,
    console,
    print_json,
    settings_or_exit,
)

send_app = typer.Typer(help="Send events to the input topics.",
                        no_args_is_help=True)
deadletter_app = typer.Typer(help="Inspect the dead-letter topic.",
                              no_args_is_help=True)


# -- sending and reading ---------------------------------------------------------------------

@send_app.command("sample")
def send_sample(bootstrap_servers: BootstrapOption = None,
                config: ConfigOption = None) -> None:
    """Send a few valid events of every kind and one input of each kind of mistake."""
    from cxstream.cli.samples import sample_records
    from cxstream.streams.kafka.plain_clients import produce

    settings = settings_or_exit(bootstrap_servers, config)
    samples = sample_records(settings, datetime.now(UTC))
    asyncio.run(produce(settings, samples.records))
    console.print(f"sent {samples.valid} valid and {samples.invalid} invalid inputs")


@send_app.command("file")
def send_file(
    path: Annotated[Path, typer.Argument(help="JSON Lines file, one event per line", exists=True,
                                         dir_okay=False)],
    topic: Annotated[str, typer.Option(help="Topic to send to, e.g. cx.feedback")],
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Send each line of PATH as one message; its key is the line's customer_id."""
    from cxstream.streams.kafka.plain_clients import Record, produce

    settings = settings_or_exit(bootstrap_servers, config)
    records = [Record(topic, _customer_key(line), line)
               for line in path.read_bytes().splitlines() if line.strip()]
    sent = asyncio.run(produce(settings, records))
    console.print(f"sent {sent} messages to {topic}")


def _customer_key(line: bytes) -> bytes | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None  # sent anyway: the worker dead-letters it with the reason
    customer_id = value.get("customer_id") if isinstance(value, dict) else None
    return customer_id.encode("utf-8") if isinstance(customer_id, str) else None


@deadletter_app.command("show")
def deadletter_show(limit: Annotated[int, typer.Option(help="Most recent N", min=1)] = 50,
                    bootstrap_servers: BootstrapOption = None, config: ConfigOption = None,
                    output: OutputOption = Output.text) -> None:
    """List the dead-letter records: source, error class and reason."""
    from cxstream.streams.ingest.deadletter_record import read_headers
    from cxstream.streams.kafka.plain_clients import read_topic

    settings = settings_or_exit(bootstrap_servers, config)
    records = asyncio.run(read_topic(settings, settings.topic_deadletter))
    if output is Output.json:
        print_json({"total": len(records), "records": [
            {key: value for key, value in read_headers(list(record.headers)).items()}
            for record in records[-limit:]]})
        return
    table = Table("source", "class", "reason", title=f"{len(records)} dead-letter records")
    for record in records[-limit:]:
        meta = read_headers(list(record.headers))
        table.add_row(f"{meta.get('source.topic')}[{meta.get('source.partition')}]"
                      f"@{meta.get('source.offset')}", meta.get("error.class"),
                      meta.get("error.reason"))
    console.print(table)
