"""What every command shares: the consoles, the options (-b, --config, -o, --url,
--token), loading the settings, failing with a message, JSON output, and calls to a
worker's API (through the one API client, streams.web.client)."""

from __future__ import annotations

import json
import os
import sys
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cxstream.streams.settings import CONFIG_FILE_VARIABLE, Settings, SettingsError, load_settings
from cxstream.streams.web.client import BUSY_WAIT_SECONDS, ApiClient, Unreachable
from cxstream.streams.web.errors import ApiError

console = Console()
err_console = Console(stderr=True)

#: exit code of a command that cannot reach Kafka or a worker's API (docs/cli.md)
EXIT_UNREACHABLE = 3

#: the Kafka address of the command being run, named when no broker answers there
kafka_address: ContextVar[str] = ContextVar("kafka_address", default="localhost:9092")


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
UrlOption = Annotated[str | None, typer.Option(
    help="A worker's base URL (default: this machine's CXSTREAM_WEB_HOST:CXSTREAM_WEB_PORT)")]
TokenOption = Annotated[str | None, typer.Option(
    envvar="CXSTREAM_USER_TOKEN", show_envvar=True,
    help="Act as the user of this token (users file); default: the shared API token")]


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
        settings = load_settings(environ, **overrides)
    except SettingsError as exc:
        err_console.print(f"[bold red]cxstream:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    kafka_address.set(settings.bootstrap_servers)
    return settings


def kafka_unreachable() -> typer.Exit:
    """No broker answered at the command's address: one line naming it, the setting and
    the flag; the exit to raise (EXIT_UNREACHABLE)."""
    return fail(f"cannot reach Kafka at {kafka_address.get()}: no broker answered. Start "
                "one (cxstream broker start) or name yours with -b/--bootstrap-servers or "
                "CXSTREAM_BOOTSTRAP_SERVERS", EXIT_UNREACHABLE)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` on standard error; the exit to raise with ``code``."""
    err_console.print(f"[bold red]cxstream:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    """Machine-readable output (-o json): one JSON document on standard output."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def api_call(settings: Settings, url: str | None, path: str,
             params: dict[str, str] | None = None, method: str = "GET",
             token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    """A worker's answer to one API call, waiting on a busy worker (BUSY_WAIT_SECONDS);
    an error answer or no answer exits with its message."""
    if token is None:
        token = settings.api_token.get_secret_value() if settings.api_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    client = ApiClient(base, headers, timeout=30, busy_seconds=BUSY_WAIT_SECONDS)
    try:
        return client.call(method, path, params=params, json=body)
    except Unreachable as exc:
        raise fail(f"{exc}. Start a worker, or name one with --url or CXSTREAM_WEB_HOST and "
                   "CXSTREAM_WEB_PORT", EXIT_UNREACHABLE) from exc
    except ApiError as exc:
        raise fail(f"{exc.status}: {exc}") from exc
