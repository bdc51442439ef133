"""cxstream schemas: the JSON Schemas, AsyncAPI document, examples and registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxstream.cli.options import (
    ConfigOption,
    Output,
    OutputOption,
    console,
    fail,
    print_json,
    settings_or_exit,
)

schemas_app = typer.Typer(help="JSON Schemas of the event contract.",
                           no_args_is_help=True)


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
        raise fail(str(exc)) from exc
    if output is Output.json:
        print_json([{"subject": d.subject, "id": d.schema_id,
                     "compatibility": d.compatibility} for d in done])
        return
    for registered in done:
        console.print(f"{registered.subject}: schema id {registered.schema_id} "
                      f"({registered.compatibility})")


@schemas_app.command("examples")
def schemas_examples(directory: Annotated[Path, typer.Argument(help="Output folder")]) -> None:
    """Write one example event per input topic and the alert the rules raise on them."""
    from cxstream.cli.examples import write_examples

    for path in write_examples(directory):
        console.print(str(path))
