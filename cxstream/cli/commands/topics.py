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
    """Create the missing contract topics with CXSTREAM_PARTITIONS partitions and
    CXSTREAM_REPLICATION_FACTOR replicas, and check every one: a topic the broker refuses
    to make, one with less replication than asked, the profiles or the alert cases not
    compacted, or inputs not co-partitioned exit 1 naming the topic."""
    from cxstream.streams.kafka.topic_admin import TopicLayoutError, ensure_topics

    settings = settings_or_exit(bootstrap_servers, config)
    try:
        layout = asyncio.run(ensure_topics(settings, strict=True))
    except TopicLayoutError as exc:
        raise fail(str(exc)) from exc
    if output is Output.json:
        print_json({"partitions": layout.partitions, "replication": layout.replication,
                    "created": list(layout.created)})
        return
    for name, partitions in layout.partitions.items():
        made = "created" if name in layout.created else "exists"
        console.print(f"{name}: {partitions} partitions, replication "
                      f"{layout.replication[name]} ({made})")
