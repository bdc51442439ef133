"""The ``cxstream`` command: broker, topics, worker, schemas, sending and the demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cxstream import __version__
from cxstream.streams.settings import CONFIG_FILE_VARIABLE, Settings, SettingsError, load_settings

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    help="Real-time customer-experience stream processing on Kafka and Faust.\n\n"
    "Every setting is an environment variable CXSTREAM_<NAME> (docs/configuration.md), "
    "for example CXSTREAM_BOOTSTRAP_SERVERS=localhost:9092, or a key in the TOML/YAML "
    "file named by --config or CXSTREAM_CONFIG_FILE.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="A local single-node Apache Kafka broker (KRaft, no Docker).",
                         no_args_is_help=True)
topics_app = typer.Typer(help="The contract's Kafka topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the event contract.", no_args_is_help=True)
send_app = typer.Typer(help="Send events to the input topics.", no_args_is_help=True)
deadletter_app = typer.Typer(help="Inspect the dead-letter topic.", no_args_is_help=True)
customer_app = typer.Typer(help="One customer: show their state, or erase them.",
                           no_args_is_help=True)
config_app = typer.Typer(help="The settings: check them, or print their reference.",
                         no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(send_app, name="send")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(customer_app, name="customer")
app.add_typer(config_app, name="config")
alerts_app = typer.Typer(help="Alerts and their lifecycle: list, show and act on them.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
rules_app = typer.Typer(help="The alert rules file: judge a change on history.",
                        no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _print_version(value: bool) -> None:
    if value:
        console.print(f"cxstream {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit", callback=_print_version,
        is_eager=True)] = False) -> None:
    """Real-time customer-experience stream processing on Kafka and Faust."""


class Output(StrEnum):
    text = "text"
    json = "json"


BrokersOption = Annotated[int, typer.Option(
    "--brokers", min=1, max=9, help="Brokers of the local cluster (3: replication 3, "
    "min.insync.replicas=2)")]
BootstrapOption = Annotated[str | None, typer.Option(
    "-b", "--bootstrap-servers", help="Kafka brokers, host:port[,host:port]",
    envvar="CXSTREAM_BOOTSTRAP_SERVERS", show_envvar=True)]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (TOML or YAML); the environment wins over it",
    envvar=CONFIG_FILE_VARIABLE, show_envvar=True, dir_okay=False)]
OutputOption = Annotated[Output, typer.Option("-o", "--output", help="text or json")]


def settings_or_exit(bootstrap_servers: str | None = None, config: Path | None = None,
                     **overrides: Any) -> Settings:
    """Load the settings from the environment, the file ``config`` and the command's
    options; print every mistake and exit 2 if invalid."""
    environ = dict(os.environ)
    if config is not None:
        environ[CONFIG_FILE_VARIABLE] = str(config)
    if bootstrap_servers:
        overrides["bootstrap_servers"] = bootstrap_servers
    try:
        return load_settings(environ, **overrides)
    except SettingsError as exc:
        err_console.print(f"[bold red]cxstream:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]cxstream:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _print_json(data: Any) -> None:
    """Machine-readable output (-o json): one JSON document on standard output."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


# -- broker -------------------------------------------------------------------------------

@broker_app.command("fetch")
def broker_fetch(config: ConfigOption = None) -> None:
    """Download Apache Kafka's jars from Maven Central (once; cached afterwards)."""
    from cxstream.cli.kafka import local_broker

    settings = settings_or_exit(config=config)
    try:
        path = local_broker.fetch_jars(settings)
    except local_broker.BrokerError as exc:
        raise _fail(str(exc)) from exc
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
            raise _fail(str(exc)) from exc
        console.print(f"Kafka {settings.kafka_version}: {brokers} brokers serving; "
                      f"export CXSTREAM_BOOTSTRAP_SERVERS={servers}")
        return
    try:
        state = local_broker.start(settings)
    except local_broker.BrokerError as exc:
        raise _fail(str(exc)) from exc
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
        _print_json({"running": state.running, "bootstrap_servers": state.bootstrap_servers,
                     "pid": state.pid})
    elif state.running:
        console.print(f"broker running on {state.bootstrap_servers} (pid {state.pid})")
    else:
        console.print("broker is not running")
    if not state.running:
        raise typer.Exit(3)


# -- topics, schemas ---------------------------------------------------------------------

@topics_app.command("create")
def topics_create(bootstrap_servers: BootstrapOption = None, config: ConfigOption = None,
                  output: OutputOption = Output.text) -> None:
    """Create the missing contract topics with CXSTREAM_PARTITIONS partitions."""
    from cxstream.streams.kafka.clients import TopicLayoutError, ensure_topics

    settings = settings_or_exit(bootstrap_servers, config)
    try:
        counts = asyncio.run(ensure_topics(settings))
    except TopicLayoutError as exc:
        raise _fail(str(exc)) from exc
    if output is Output.json:
        _print_json({"partitions": counts})
        return
    for name, partitions in counts.items():
        console.print(f"{name}: {partitions} partitions")


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Argument(help="Output folder")]) -> None:
    """Write one JSON Schema per topic of the contract into DIRECTORY."""
    from cxstream.cli.examples import example_alert
    from cxstream.schemas.export import export_schemas

    for path in export_schemas(directory, {"cx.alerts.schema.json": [example_alert()]}):
        console.print(str(path))


@schemas_app.command("asyncapi")
def schemas_asyncapi(
    file: Annotated[Path, typer.Argument(help="Where to write the YAML document")],
    config: ConfigOption = None,
) -> None:
    """Write the AsyncAPI 3 document of every topic (keys, value schemas, headers)."""
    import yaml

    from cxstream.cli.asyncapi import asyncapi

    settings = settings_or_exit(config=config)
    file.write_text("# written by `cxstream schemas asyncapi`; the value schemas are "
                    "beside it in schemas/\n" + yaml.safe_dump(asyncapi(settings),
                                                               sort_keys=False, width=100))
    console.print(str(file))


@schemas_app.command("register")
def schemas_register(
    registry_url: Annotated[str, typer.Option(
        help="The Schema Registry's base URL, e.g. http://registry:8081")],
    user: Annotated[str | None, typer.Option(
        envvar="CXSTREAM_REGISTRY_USER", help="Basic auth user (API key)")] = None,
    password: Annotated[str | None, typer.Option(
        envvar="CXSTREAM_REGISTRY_PASSWORD", help="Basic auth password (API secret)")] = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Register every topic's JSON Schema as <topic>-value, compatibility BACKWARD."""
    import httpx

    from cxstream.cli.registry import RegistryError, register_schemas

    settings = settings_or_exit(config=config)
    auth = (user, password or "") if user else None
    try:
        with httpx.Client(base_url=registry_url.rstrip("/"), auth=auth, timeout=30) as client:
            done = register_schemas(settings, client)
    except RegistryError as exc:
        raise _fail(str(exc)) from exc
    if output is Output.json:
        _print_json([{"subject": d.subject, "id": d.schema_id,
                      "compatibility": d.compatibility} for d in done])
        return
    for registered in done:
        console.print(f"{registered.subject}: schema id {registered.schema_id} "
                      f"({registered.compatibility})")


# -- config ----------------------------------------------------------------------------

@config_app.command("check")
def config_check(config: ConfigOption = None, output: OutputOption = Output.text) -> None:
    """Check the settings, the rules file, the users file and the lexicons (exit 2 on a
    mistake); print the effective configuration, secrets masked."""
    from cxstream.alerts.comment_tags import LexiconError, load_tagger
    from cxstream.alerts.config import RulesError, load_rules
    from cxstream.streams.table_limits import bound_problems, request_limit, value_bounds
    from cxstream.streams.users import UsersError, load_users

    settings = settings_or_exit(config=config)
    try:
        rules = load_rules(settings.rules_file)
        load_tagger(settings.lexicons_dir)
        load_users(settings.users_file, None)
    except (RulesError, LexiconError, UsersError) as exc:
        raise _fail(str(exc), 2) from exc
    bounds = value_bounds(settings, rules)
    problems = bound_problems(bounds, request_limit(settings))
    if problems:
        raise _fail("\n".join(problems), 2)
    effective = settings.model_dump(mode="json")  # SecretStr values come out masked
    if output is Output.json:
        _print_json(effective)
        return
    table = Table("variable", "value", title="effective configuration")
    for name, value in effective.items():
        table.add_row(f"CXSTREAM_{name.upper()}", "" if value is None else str(value))
    console.print(table)
    sizes = Table("store", "largest value (bytes)", "settings that decide it",
                  title=f"table values at their caps (limit {request_limit(settings)} bytes)")
    for bound in bounds:
        sizes.add_row(bound.store, str(bound.max_bytes), ", ".join(bound.settings))
    console.print(sizes)
    err_console.print("settings, rules, users and lexicons are valid")


@config_app.command("reference")
def config_reference() -> None:
    """Print every setting with its default, allowed values and meaning (Markdown: the
    content of docs/configuration.md)."""
    from cxstream.cli.reference import configuration_reference

    sys.stdout.write(configuration_reference())


@schemas_app.command("examples")
def schemas_examples(directory: Annotated[Path, typer.Argument(help="Output folder")]) -> None:
    """Write one example event per input topic and the alert the rules raise on them."""
    from cxstream.cli.examples import write_examples

    for path in write_examples(directory):
        console.print(str(path))


# -- worker -------------------------------------------------------------------------------

@app.command()
def worker(
    web_port: Annotated[int | None, typer.Option(help="HTTP port (CXSTREAM_WEB_PORT)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (CXSTREAM_DATA_DIR)")] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Run a stream worker: ingest, state, scores, alerts; /metrics on its web port."""
    overrides = {k: v for k, v in {"web_port": web_port, "data_dir": data_dir}.items() if v}
    settings = settings_or_exit(bootstrap_servers, config, **overrides)
    from cxstream.streams.worker import WorkerStartError, run_worker

    try:
        run_worker(settings)
    except WorkerStartError as exc:
        raise _fail(str(exc)) from exc


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
        _print_json({"total": len(records), "records": [
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


# -- queries -------------------------------------------------------------------------------

UrlOption = Annotated[str | None, typer.Option(
    help="A worker's base URL (default: this machine's CXSTREAM_WEB_HOST:CXSTREAM_WEB_PORT)")]


def _api_get(settings: Settings, url: str | None, path: str,
             params: dict[str, str] | None = None) -> Any:
    return _api_request(settings, url, path, params)


def _api_request(settings: Settings, url: str | None, path: str,
                 params: dict[str, str] | None = None, method: str = "GET",
                 token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    import httpx

    if token is None:
        token = settings.api_token.get_secret_value() if settings.api_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    try:
        response = busy_retrying(lambda: httpx.request(
            method, base + path, params=params, headers=headers, timeout=30, json=body))
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach a worker at {base}: {exc}") from exc
    if response.status_code != 200:
        raise _fail(f"{response.status_code}: {response.json().get('error', response.text)}")
    return response.json()


#: how long a command waits on a worker that answers 503 with Retry-After (restoring
#: its tables, taking over partitions, stopping) before it says so
BUSY_WAIT_SECONDS = 60.0


def busy_retrying(request: Callable[[], Any]) -> Any:
    """``request()`` again while its answer is a 503 with Retry-After, waiting what the
    worker asks (at most 10 s a time, BUSY_WAIT_SECONDS in all); the last answer."""
    import tenacity

    def busy(response: Any) -> bool:
        return response.status_code == 503 and "Retry-After" in response.headers

    def asked(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        header = outcome.result().headers.get("Retry-After", "1") if outcome else "1"
        try:
            return min(max(float(header), 0.1), 10.0)
        except ValueError:
            return 1.0

    return tenacity.Retrying(
        retry=tenacity.retry_if_result(busy), wait=asked,
        stop=tenacity.stop_after_delay(BUSY_WAIT_SECONDS),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome
        else None, reraise=True)(request)


TokenOption = Annotated[str | None, typer.Option(
    envvar="CXSTREAM_USER_TOKEN", show_envvar=True,
    help="Act as the user of this token (users file); default: the shared API token")]


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"
    unresolved = "unresolved"


@alerts_app.command("list")
def alerts_list(
    owner: Annotated[str | None, typer.Option(help="Only this owner's")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's")] = None,
    status: Annotated[AlertStatus | None, typer.Option(
        help="Only this status (unresolved: all but resolved)")] = AlertStatus.unresolved,
    severity: Annotated[Severity | None, typer.Option(help="Only this severity")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's")] = None,
    customer_id: Annotated[str | None, typer.Option(help="Only this customer's")] = None,
    limit: Annotated[int, typer.Option(help="At most this many", min=1, max=500)] = 50,
    url: UrlOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Alerts, the soonest due first (then severity, then customer value)."""
    settings = settings_or_exit(config=config)
    params = {name: str(value) for name, value in {
        "owner": owner, "team": team, "status": status, "severity": severity, "rule": rule,
        "customer_id": customer_id}.items() if value is not None}
    params["limit"] = str(limit)
    found = _api_request(settings, url, "/api/alerts", params, token=token)
    if output is Output.json:
        _print_json(found)
        return
    table = Table("due", "severity", "rule", "subject", "owner", "status", "alert id",
                  title=f"{len(found['alerts'])} of {found['total']} alerts")
    for row in found["alerts"]:
        table.add_row(_due(row["due_in_seconds"]), row["severity"], row["rule"],
                      row["customer_id"] or row["segment"] or "group", row["owner"],
                      row["status"], row["alert_id"])
    console.print(table)


def _due(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes = abs(seconds) // 60
    text = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return f"overdue {text}" if seconds < 0 else f"in {text}"


AlertIdArgument = Annotated[str, typer.Argument(help="The alert_id")]


@alerts_app.command("show")
def alerts_show(alert_id: AlertIdArgument, url: UrlOption = None, token: TokenOption = None,
                config: ConfigOption = None, output: OutputOption = Output.text) -> None:
    """One alert: its state, why it fired, and its history."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    found = _api_request(settings, url, f"/api/alerts/{quote(alert_id, safe='')}",
                         token=token)
    if output is Output.json:
        _print_json(found)
        return
    alert = found["alert"]
    console.print(f"[bold]{alert['alert']['summary']}[/]\n{alert['severity']} · "
                  f"{alert['status']} · owner {alert['owner']} (team {alert['team']}) · "
                  f"due {_due(alert['due_in_seconds'])}")
    for name, value in alert["alert"]["reason"].items():
        console.print(f"  {name}: {value}")
    history = Table("when", "what", "who", "why", title="history")
    for change in found["history"]:
        history.add_row(change["at"], change["action"], change["actor"],
                        change.get("reason") or "")
    console.print(history)


def _act(alert_id: str, action: str, body: dict[str, Any], url: str | None,
         token: str | None, config: Path | None, output: Output) -> None:
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    done = _api_request(settings, url, f"/api/alerts/{quote(alert_id, safe='')}/{action}",
                        method="POST", token=token, body=body)
    if output is Output.json:
        _print_json(done)
        return
    change = done["change"]
    console.print(f"{alert_id}: {change['action']} by {change['actor']} "
                  f"(now {done['alert']['status']}, owner {done['alert']['owner']})")


@alerts_app.command("ack")
def alerts_ack(alert_id: AlertIdArgument, url: UrlOption = None, token: TokenOption = None,
               config: ConfigOption = None, output: OutputOption = Output.text) -> None:
    """Acknowledge an alert: you are on it (its resolve deadline starts)."""
    _act(alert_id, "ack", {}, url, token, config, output)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: AlertIdArgument,
    category: Annotated[str, typer.Option(
        help="One of the rules file's lifecycle.resolution_categories")],
    note: Annotated[str | None, typer.Option(help="What was done")] = None,
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Resolve an alert, with how."""
    _act(alert_id, "resolve", {"category": category, "note": note}, url, token, config,
         output)


@alerts_app.command("assign")
def alerts_assign(
    alert_id: AlertIdArgument,
    to: Annotated[str, typer.Option(help="A user or a team")],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Give an alert to someone else."""
    _act(alert_id, "assign", {"to": to}, url, token, config, output)


@alerts_app.command("note")
def alerts_note(
    alert_id: AlertIdArgument,
    text: Annotated[str, typer.Argument(help="The note")],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Add a note to an alert's history."""
    _act(alert_id, "note", {"text": text}, url, token, config, output)


@alerts_app.command("snooze")
def alerts_snooze(
    alert_id: AlertIdArgument,
    hours: Annotated[float, typer.Option(help="For this many hours", min=0.01)],
    url: UrlOption = None, token: TokenOption = None, config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Put an alert aside until later (no escalation meanwhile)."""
    until = datetime.now(UTC) + timedelta(hours=hours)
    _act(alert_id, "snooze", {"until": until.isoformat()}, url, token, config, output)


@customer_app.command("show")
def customer_show(
    customer_id: Annotated[str, typer.Argument(help="The customer_id")],
    url: UrlOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Show a customer's state: profile, value band, quadrant, scores, interactions."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    path = f"/api/customers/{quote(customer_id, safe='')}"
    data = _api_get(settings, url, path)
    if output is Output.json:
        _print_json(data)
    else:
        console.print_json(data=data)


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="The customer_id")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    url: UrlOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Erase a customer (right to erasure): their state, value and remembered event ids
    are removed through the changelog; their past answers stay in the group tallies,
    which hold no ids. Events of theirs read again later are not applied again."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    if not yes and not typer.confirm(f"Erase customer {customer_id!r}?"):
        raise typer.Exit(1)
    path = f"/api/customers/{quote(customer_id, safe='')}/erase"
    data = _api_request(settings, url, path, method="POST")
    if output is Output.json:
        _print_json(data)
    else:
        console.print_json(data=data)


class Dimension(StrEnum):
    segment = "segment"
    channel = "channel"
    touchpoint = "touchpoint"


class Metric(StrEnum):
    nps = "nps"
    csat = "csat"
    ces = "ces"


@app.command()
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
    url: UrlOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Scores of one group (current and previous windows), or groups ranked by a metric."""
    from urllib.parse import quote

    settings = settings_or_exit(config=config)
    windows = ("hour", "day", f"{settings.long_window_days}d")
    if window not in windows:  # checked before any request
        raise _fail(f"--window: {window!r} is not one of {', '.join(windows)}", 2)
    params = {"window": window, "metric": metric.value, "min_n": str(min_n)}
    if at:
        params["at"] = at.isoformat()
    if key is not None:
        report = _api_get(settings, url,
                          f"/api/scores/{dimension.value}/{quote(key, safe='')}",
                          {"at": params["at"]} if at else None)
        if output is Output.json:
            _print_json(report)
        else:
            _print_group(report)
        return
    ranked = _api_get(settings, url, f"/api/scores/{dimension.value}", params)
    if output is Output.json:
        _print_json(ranked)
        return
    dimension_name, metric_name = dimension.value, metric.value
    table = Table("rank", dimension_name, metric_name.upper(), "n", "± (95 %)",
                  title=f"{dimension_name} by {metric_name.upper()}, {window} from "
                  f"{ranked['start']}")
    for rank, row in enumerate(ranked["groups"], 1):
        table.add_row(str(rank), row["key"], f"{row['score']:g}", str(row["n"]),
                      "" if row["margin_of_error"] is None else f"{row['margin_of_error']:g}")
    console.print(table)


class RankBy(StrEnum):
    value = "value"
    customers = "customers"
    mix = "mix"


class IssueKind(StrEnum):
    touchpoint = "touchpoint"
    topic = "topic"


@app.command()
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
    ranked = _api_get(settings, url, "/api/priorities", params)
    if output is Output.json:
        _print_json(ranked)
        return
    table = Table("rank", "issue", "customers", "silent", "value at stake", "top band",
                  "previous", "trend",
                  title=f"priorities by {ranked['rank_by']}, window from "
                  f"{ranked['window']['start'][:16].replace('T', ' ')} "
                  f"({ranked['total']} issues)")
    for row in ranked["issues"]:
        share = row["top_value_share"]
        previous = row["previous"]
        table.add_row(
            str(row["rank"]), row["issue"],
            f"{row['customers']}" + (" (few)" if row["few"] else ""), str(row["silent"]),
            f"{row['value']:,.2f}", "-" if share is None else f"{share:.0%}",
            "-" if previous is None else f"{previous['customers']} / {previous['value']:,.2f}",
            row["trend"])
    console.print(table)
    if not ranked["issues"]:
        console.print("no negative signals in this window")


def _print_group(report: dict[str, Any]) -> None:
    table = Table("window", "start", "NPS (n, ±)", "CSAT % (n, ±)", "CES mean (n, ±)",
                  title=f"{report['dimension']} {report['key']}")
    for name, pair in report["windows"].items():
        for which in ("current", "previous"):
            row = pair[which]
            table.add_row(f"{name} {which}", row["start"][:16].replace("T", " "),
                          *(_cell(row[metric]) for metric in ("nps", "csat", "ces")))
    console.print(table)


def _cell(score: dict[str, Any] | None) -> str:
    if score is None:
        return "-"
    margin = score["margin_of_error"]
    return f"{score['score']:g} ({score['n']}, ±{'?' if margin is None else f'{margin:g}'})"


@app.command()
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
            _print_json(tallies)
        else:
            console.print_json(data=tallies)
        return
    token = settings.api_token.get_secret_value() if settings.api_token else None
    actual = stream_tallies(url or f"http://{settings.web_host}:{settings.web_port}", token)
    found = differences(expected, actual)
    if output is Output.json:
        _print_json({"group_windows": len(set(expected) | set(actual)), "differences": found})
        if found:
            raise typer.Exit(1)
        return
    if found:
        console.print_json(data=found)
        raise _fail(f"{len(found)} of {len(set(expected) | set(actual))} group windows differ")
    console.print(f"stream and batch agree on all {len(expected)} group windows")


@rules_app.command("backtest")
def rules_backtest(
    rules: Annotated[Path, typer.Option(help="The rules file to judge (YAML or TOML)")],
    since: Annotated[str, typer.Option(
        help="Replay the inputs stored since: a span back from now (30d, 12h) or an ISO "
             "time with offset")] = "30d",
    against: Annotated[Path | None, typer.Option(
        help="The rules file to compare with (default: the current one, "
             "CXSTREAM_RULES_FILE, else the shipped rules)")] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    output: OutputOption = Output.text,
) -> None:
    """Replay the input topics through the fold and the rules a worker runs (no Faust,
    nothing sent) and count the alerts each rules file would have raised, per rule,
    severity and owner, with examples."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cxstream.alerts.config import RulesError, load_rules
    from cxstream.cli import backtest as bt

    settings = settings_or_exit(bootstrap_servers, config)
    try:
        start = bt.parse_since(since, datetime.now(UTC))
        proposed_rules = load_rules(rules)
        current_path = against or settings.rules_file
        current_rules = load_rules(current_path)
    except (ValueError, RulesError) as exc:
        raise _fail(str(exc), 2) from exc
    with err_console.status("reading the input topics"):
        inputs = list(bt.merged(asyncio.run(bt.read_history(settings, start.timestamp()))))
    reports = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True,
                  disable=not err_console.is_terminal) as progress:
        for name, config_ in ((str(current_path or "shipped rules"), current_rules),
                              (str(rules), proposed_rules)):
            task = progress.add_task(f"replaying with {Path(name).name}", total=len(inputs))

            def advance(n: int, task: Any = task) -> None:
                progress.advance(task, n)

            replay = bt.Replay(settings, config_, name)
            reports.append(asyncio.run(replay.run(inputs, advance)))
    current, proposed = reports
    compared = bt.comparison(current, proposed)
    if output is Output.json:
        _print_json({"since": start.isoformat(), "current": bt.report_json(current),
                     "proposed": bt.report_json(proposed), "comparison": compared})
        return
    console.print(f"{proposed.inputs} inputs from {proposed.first_record or '-'} to "
                  f"{proposed.last_record or '-'} ({proposed.rejected} invalid, left out)")
    table = Table("rule", "severity", "owner", "current", "proposed", "change",
                  title=f"alerts that would have fired since {start.isoformat()}")
    for row in compared:
        table.add_row(row["rule"], row["severity"], row["owner"], str(row["current"]),
                      str(row["proposed"]), row["change"])
    console.print(table)
    if not compared:
        console.print("no alert would have fired with either rules file")
    for group in bt.report_json(proposed)["groups"]:
        console.print(f"[bold]{group['rule']}[/] {group['severity']} to {group['owner']}: "
                      f"{group['alerts']} alerts, for example")
        for example in group["examples"]:
            console.print(f"  {example['event_time'][:16]}  {example['summary']}")


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


@app.command()
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
    from cxstream.streams.kafka.clients import ensure_topics

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


@app.command()
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
        raise _fail("--speed: must be greater than 0", 2)
    settings = settings_or_exit(bootstrap_servers, config)
    try:
        count = sum(1 for _ in read_jsonl(path))  # every line checked before sending any
    except ReplayFileError as exc:
        raise _fail(str(exc), 2) from exc
    _send_simulation(settings, read_jsonl(path), count, None if fast else speed)


@app.command()
def demo(
    customers: CustomersOption = 2000,
    rate: RateOption = 40.0,
    duration: DurationOption = 180.0,
    seed: SeedOption = 7,
    history_days: HistoryDaysOption = 7,
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
    config = _sim_config_or_exit(customers=customers, rate=rate, duration=duration,
                                 seed=seed, history_days=history_days)
    sys.exit(run_demo(settings, console, DemoOptions(config, keep_broker=keep_broker,
                                                     summary_file=summary_json)))


def main() -> None:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("cxstream").setLevel(logging.INFO)
    app()


if __name__ == "__main__":
    main()
