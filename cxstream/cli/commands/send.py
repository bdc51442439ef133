"""cxstream send and cxstream deadletter: events into the input topics, and the dead letters out."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum
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
    fail,
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


class ExampleKind(StrEnum):
    all = "all"
    customers = "customers"
    interactions = "interactions"
    feedback = "feedback"


@send_app.command("example")
def send_example(
    kind: Annotated[ExampleKind, typer.Argument(help="Which example; all: the three, the "
                                                "profile first")] = ExampleKind.all,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Send the examples of README.md and docs/contract.md, stamped now with fresh ids
    (the printed ones cannot raise an alert: customer rules skip events older than the
    rules file's max_event_age_hours, 48 h by default)."""
    from cxstream.cli.samples import EXAMPLES, example_events
    from cxstream.streams.kafka.plain_clients import Record, produce

    settings = settings_or_exit(bootstrap_servers, config)
    topics = {"customers": settings.topic_customers,
              "interactions": settings.topic_interactions,
              "feedback": settings.topic_feedback}
    kinds = tuple(EXAMPLES) if kind is ExampleKind.all else (kind.value,)
    events = example_events(datetime.now(UTC), secrets.token_hex(3), kinds)
    for step, (name, event) in enumerate(events):
        if step:
            time.sleep(1.0)  # the profile first: the alert is routed by its segment
        asyncio.run(produce(settings, [Record(topics[name], event["customer_id"].encode(),
                                              json.dumps(event).encode())]))
        console.print(f"sent to {topics[name]}: {json.dumps(event, ensure_ascii=False)}",
                      highlight=False, soft_wrap=True)
    customer = events[0][1]["customer_id"]
    console.print(f"then: cxstream alerts list --customer-id {customer}", highlight=False)


@send_app.command("file")
def send_file(
    path: Annotated[Path, typer.Argument(
        help="A JSON file (one event, or an array of events) or JSON Lines (one event per "
        "line)", exists=True, dir_okay=False)],
    topic: Annotated[str, typer.Option(help="Topic to send to, e.g. cx.feedback")],
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Send each event of PATH as one message, keyed by its customer_id. A file that is
    neither JSON nor JSON Lines is refused (exit 2) naming its first bad line, and
    nothing is sent."""
    from cxstream.streams.kafka.plain_clients import Record, produce

    try:
        events = events_of_file(path.read_bytes())
    except ValueError as exc:
        raise fail(f"{path}: {exc}", 2) from exc
    settings = settings_or_exit(bootstrap_servers, config)
    records = [Record(topic, _customer_key(event), json.dumps(event).encode("utf-8"))
               for event in events]
    sent = asyncio.run(produce(settings, records))
    console.print(f"sent {sent} messages to {topic}")


def events_of_file(data: bytes) -> list[Any]:
    """The events of a JSON document (one object, or an array of them) or of JSON Lines
    (blank lines skipped); raises ValueError naming the first line that is not JSON."""
    try:
        document = json.loads(data)
    except ValueError:
        document = None  # not one document: JSON Lines, or neither
    else:
        return document if isinstance(document, list) else [document]
    events = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError as exc:
            raise ValueError(f"line {number} is not JSON ({exc}): the file must be one JSON "
                             "document or JSON Lines, one event per line") from exc
    return events


def _customer_key(event: Any) -> bytes | None:
    customer_id = event.get("customer_id") if isinstance(event, dict) else None
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
