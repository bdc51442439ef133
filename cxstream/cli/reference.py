"""docs/configuration.md, generated from the settings model (``cxstream config
reference``); a test keeps the file current."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from cxstream.scoring.conventions import Conventions
from cxstream.scoring.customer import StateRules
from cxstream.streams.settings import CONFIG_FILE_VARIABLE, ENV_PREFIX, TEST_PREFIX, Settings

SECTIONS = (
    ("Kafka, topics, the worker, the HTTP API, alerts and the local broker", None),
    ("Score conventions", Conventions),
    ("Customer state and what makes an experience low", StateRules),
)

INTRO = f"""# Configuration

Every setting is an environment variable `{ENV_PREFIX}<NAME>`, or a key `<name>` in a TOML
or YAML file named by `--config` or `{CONFIG_FILE_VARIABLE}`; the environment wins over the
file. Settings are checked at start-up: each mistake, including an unknown
`{ENV_PREFIX}*` variable (usually a typo), is reported on its own line naming the
variable, and the command exits with code 2. `cxstream config check` checks the settings,
the rules file and the lexicons, and prints the effective configuration with secrets
masked. Variables starting with `{TEST_PREFIX}` belong to the test suite and are ignored.

Faust reads some variables of its own (`BROKER_URL`, `APP_DATADIR`, ...) and lets them win
over what cxstream configures: a worker refuses to start while any of them is set.

This file is generated from the settings model: `cxstream config reference >
docs/configuration.md`.
"""


def _default(name: str, field: FieldInfo) -> str:
    if name == "kafka_cache_dir":
        return "`~/.cache/cxstream`"  # computed from the home folder of whoever runs it
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "none"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Path):
        return f"`{default}`"
    return f"`{default}`"


def _allowed(field: FieldInfo) -> str:
    """Choices or bounds of a field, from its annotation and constraints."""
    choices = [arg for arg in typing.get_args(field.annotation)
               if typing.get_origin(arg) is typing.Literal]
    literal = typing.get_args(choices[0]) if choices else typing.get_args(field.annotation) \
        if typing.get_origin(field.annotation) is typing.Literal else ()
    if literal:
        return ", ".join(f"`{value}`" for value in literal)
    bounds = []
    for item in field.metadata:
        for attribute, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"),
                                ("min_length", "length ≥"), ("max_length", "length ≤")):
            value: Any = getattr(item, attribute, None)
            if value is not None:
                bounds.append(f"{sign} {value:,}" if isinstance(value, int) else
                              f"{sign} {value}")
    return ", ".join(bounds)


def configuration_reference() -> str:
    own = [name for name in Settings.model_fields
           if name not in Conventions.model_fields and name not in StateRules.model_fields]
    lines = [INTRO]
    for title, model in SECTIONS:
        names = own if model is None else list(model.model_fields)
        lines += [f"## {title}", "", "| variable | default | allowed | meaning |",
                  "|---|---|---|---|"]
        for name in names:
            field = Settings.model_fields[name]
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {_default(name, field)} | "
                         f"{_allowed(field)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)
