"""The documentation stays true: the README's size and examples, the generated schema
and example files, and links between the documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cxstream.cli.examples import examples
from cxstream.schemas.events import CustomerProfile, Feedback, Interaction
from cxstream.schemas.export import SCHEMAS
from cxstream.schemas.outputs import Alert

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MODELS = {"cx.customers.json": CustomerProfile, "cx.interactions.json": Interaction,
          "cx.feedback.json": Feedback, "cx.alerts.json": Alert}


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) < 250


def test_the_example_files_are_what_the_code_produces_and_valid() -> None:
    for name, example in examples().items():
        on_disk = json.loads((DOCS / "examples" / name).read_text())
        assert on_disk == example, f"regenerate: cxstream schemas examples docs/examples ({name})"
        MODELS[name].model_validate(on_disk)


def test_the_readme_shows_the_example_files() -> None:
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert [json.loads(block) for block in blocks] == list(examples().values())


def test_the_schema_files_are_current(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cxstream.cli.main import app

    result = CliRunner().invoke(app, ["schemas", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in SCHEMAS:
        on_disk = json.loads((DOCS / "schemas" / name).read_text())
        current = json.loads((tmp_path / name).read_text())
        assert on_disk == current, f"regenerate: cxstream schemas export docs/schemas ({name})"


def test_relative_links_point_to_files_that_exist() -> None:
    broken = []
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []
