"""cxstream customer: one customer's state, or their erasure."""

from __future__ import annotations

from typing import Annotated

import typer

from cxstream.cli.options import (
    ConfigOption,
    Output,
    OutputOption,
    UrlOption,
    api_call,
    console,
    print_json,
    settings_or_exit,
)

customer_app = typer.Typer(help="One customer: show their state, or erase them.",
                            no_args_is_help=True)


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
    data = api_call(settings, url, path)
    if output is Output.json:
        print_json(data)
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
    data = api_call(settings, url, path, method="POST")
    if output is Output.json:
        print_json(data)
    else:
        console.print_json(data=data)
