"""The ``cxstream`` command: its groups (cli/commands, one module each) put together.

    broker, topics, schemas, config     the local Kafka, the contract, the settings
    worker                              run one worker
    send, deadletter                    events in, dead letters out
    alerts, customer                    work alerts, look up or erase a customer
    scores, priorities, recompute       read the scores and what to fix first
    rules                               judge a change of the rules file on history
    simulate, replay, demo              simulated customers, and the demo
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from aiokafka.errors import KafkaConnectionError
from typer.core import TyperGroup

from cxstream import __version__
from cxstream.cli.commands import (
    alerts,
    broker,
    config,
    customer,
    model,
    rules,
    schemas,
    scores,
    send,
    simulation,
    surveys,
    topics,
    worker,
)
from cxstream.cli.options import console, kafka_unreachable


class _RefusedConnections(logging.Filter):
    """aiokafka logs each refused connection at ERROR before it raises: a command says it
    once, in its own words (a worker keeps them: they date a broker's absence)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable connect to")


_REFUSED_CONNECTIONS = _RefusedConnections()


class Commands(TyperGroup):
    """The root group: a command that cannot reach Kafka ends with one line naming the
    address, the setting and the flag, and exit 3, whichever command it is."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        if ctx.invoked_subcommand != "worker":
            logging.getLogger("aiokafka").addFilter(_REFUSED_CONNECTIONS)
        try:
            return super().invoke(ctx)
        except KafkaConnectionError as exc:
            raise kafka_unreachable() from exc


app = typer.Typer(
    cls=Commands,
    help="Real-time customer-experience stream processing on Kafka and Faust.\n\n"
    "Every setting is an environment variable CXSTREAM_<NAME> (docs/configuration.md), "
    "for example CXSTREAM_BOOTSTRAP_SERVERS=localhost:9092, or a key in the TOML/YAML "
    "file named by --config or CXSTREAM_CONFIG_FILE.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for group, name in ((broker.broker_app, "broker"), (topics.topics_app, "topics"),
                    (schemas.schemas_app, "schemas"), (send.send_app, "send"),
                    (send.deadletter_app, "deadletter"), (customer.customer_app, "customer"),
                    (config.config_app, "config"), (alerts.alerts_app, "alerts"),
                    (rules.rules_app, "rules"), (surveys.surveys_app, "surveys"),
                    (model.model_app, "model")):
    app.add_typer(group, name=name)
for command in (worker.worker, scores.scores, scores.priorities, scores.recompute,
                simulation.simulate, simulation.replay, simulation.demo):
    app.command()(command)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"cxstream {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit", callback=_print_version,
        is_eager=True)] = False) -> None:
    """Real-time customer-experience stream processing on Kafka and Faust."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("cxstream").setLevel(logging.INFO)
    app()


if __name__ == "__main__":
    main()
