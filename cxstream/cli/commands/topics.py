"""cxstream topics: the contract's Kafka topics."""

from __future__ import annotations

import asyncio

import typer

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

topics_app = typer.Typer(help="The contract's Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
def topics_create(bootstrap_servers: BootstrapOption = None, config: ConfigOption = None,
                  output: OutputOption = Output.text) -> None:
    """Create the missing contract topics with CXSTREAM_PARTITIONS partitions."""
    from cxstream.streams.kafka.clients import TopicLayoutError, ensure_topics

    settings = settings_or_exit(bootstrap_servers, config)
    try:
        counts = asyncio.run(ensure_topics(settings))
    except TopicLayoutError as exc:
        raise fail(str(exc)) from exc
    if output is Output.json:
        print_json({"partitions": counts})
        return
    for name, partitions in counts.items():
        console.print(f"{name}: {partitions} partitions")
