"""cxstream config: check the settings, or print their reference."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from cxstream.cli.options import (
    ConfigOption,
    Output,
    OutputOption,
    console,
    err_console,
    fail,
    print_json,
    settings_or_exit,
)

config_app = typer.Typer(help="The settings: check them, or print their reference.",
                          no_args_is_help=True)


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
        raise fail(str(exc), 2) from exc
    bounds = value_bounds(settings, rules)
    problems = bound_problems(bounds, request_limit(settings))
    if problems:
        raise fail("\n".join(problems), 2)
    effective = settings.model_dump(mode="json")  # SecretStr values come out masked
    if output is Output.json:
        print_json(effective)
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
