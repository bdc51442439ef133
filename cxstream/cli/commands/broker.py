"""cxstream broker: a local Apache Kafka broker or cluster (KRaft, no Docker)."""

from __future__ import annotations

import typer

from cxstream.cli.options import (
    BootstrapOption,
    BrokersOption,
    ConfigOption,
    Output,
    OutputOption,
    console,
    fail,
    print_json,
    settings_or_exit,
)

broker_app = typer.Typer(help="A local single-node Apache Kafka broker (KRaft, no Docker).",
                          no_args_is_help=True)


# -- broker -------------------------------------------------------------------------------

@broker_app.command("fetch")
def broker_fetch(config: ConfigOption = None) -> None:
    """Download Apache Kafka's jars from Maven Central (once; cached afterwards)."""
    from cxstream.cli.kafka import local_broker

    settings = settings_or_exit(config=config)
    try:
        path = local_broker.fetch_jars(settings)
    except local_broker.BrokerError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Kafka {settings.kafka_version} jars in {path}")


@broker_app.command("start")
def broker_start(bootstrap_servers: BootstrapOption = None,
                 config: ConfigOption = None, brokers: BrokersOption = 1) -> None:
    """Start the local broker on CXSTREAM_BOOTSTRAP_SERVERS and wait until it serves;
    with --brokers 3, a cluster of three (replication 3, min.insync.replicas=2) whose
    first node listens there."""
    from cxstream.cli.kafka import local_broker, local_cluster

    settings = settings_or_exit(bootstrap_servers, config)
    if brokers > 1:
        try:
            servers = local_cluster.start(settings, brokers)
        except local_broker.BrokerError as exc:
            raise fail(str(exc)) from exc
        console.print(f"Kafka {settings.kafka_version}: {brokers} brokers serving; "
                      f"export CXSTREAM_BOOTSTRAP_SERVERS={servers}")
        return
    try:
        state = local_broker.start(settings)
    except local_broker.BrokerError as exc:
        raise fail(str(exc)) from exc
    console.print(f"Kafka {settings.kafka_version} serving on {state.bootstrap_servers} "
                  f"(pid {state.pid}, log {state.log_file})")


@broker_app.command("stop")
def broker_stop(bootstrap_servers: BootstrapOption = None,
                config: ConfigOption = None, brokers: BrokersOption = 1) -> None:
    """Stop the local broker (or the --brokers N cluster) cleanly."""
    from cxstream.cli.kafka import local_broker, local_cluster

    settings = settings_or_exit(bootstrap_servers, config)
    if brokers > 1:
        console.print(f"{local_cluster.stop(settings, brokers)} brokers stopped")
        return
    stopped = local_broker.stop(settings)
    console.print("broker stopped" if stopped else "broker was not running")


@broker_app.command("status")
def broker_status(bootstrap_servers: BootstrapOption = None, config: ConfigOption = None,
                  output: OutputOption = Output.text) -> None:
    """Say whether the local broker runs (exit 0) or not (exit 3)."""
    from cxstream.cli.kafka import local_broker

    state = local_broker.status(settings_or_exit(bootstrap_servers, config))
    if output is Output.json:
        print_json({"running": state.running, "bootstrap_servers": state.bootstrap_servers,
                    "pid": state.pid})
    elif state.running:
        console.print(f"broker running on {state.bootstrap_servers} (pid {state.pid})")
    else:
        console.print("broker is not running")
    if not state.running:
        raise typer.Exit(3)
