"""The wall around Faust's internals: versions checked, private names in one package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cxstream.streams.kafka import faust_compat
from cxstream.streams.kafka.faust_compat import SUPPORTED, FaustVersionError, version_problems

PACKAGE = Path(faust_compat.__file__).resolve().parents[2]  # cxstream/
WALL = Path(faust_compat.__file__).resolve().parent
TESTS = PACKAGE.parent / "tests"


def test_the_installed_versions_are_the_supported_ones() -> None:
    assert version_problems() == []
    faust_compat.check_versions()  # raises otherwise


def test_another_version_is_refused_with_a_message_naming_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    newer = {**SUPPORTED, "faust-streaming": "0.16.0"}
    missing = {name: version for name, version in SUPPORTED.items() if name != "aiokafka"}
    assert version_problems(newer) == [
        "faust-streaming 0.16.0 is installed; cxstream needs faust-streaming==0.15.3"]
    assert version_problems(missing) == [  # type: ignore[arg-type]
        "aiokafka not installed is installed; cxstream needs aiokafka==0.14.0"]
    monkeypatch.setattr(faust_compat, "version_problems", lambda: version_problems(newer))
    with pytest.raises(FaustVersionError, match=r"faust-streaming 0\.16\.0"):
        faust_compat.install()


def private_uses(path: Path) -> list[str]:
    """Faust or aiokafka private names a module touches: attributes with a leading
    underscore on anything but self or cls, ``.data`` (a table's store), and private
    names imported from faust, mode or aiokafka, or named to getattr and its kin."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if (private and owner not in ("self", "cls", "os")) or node.attr == "data":
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in ("faust", "mode", "aiokafka") and (
                    any(alias.name.startswith("_") for alias in node.names)
                    or any(part.startswith("_") for part in node.module.split("."))):
                found.append(f"{path.name}:{node.lineno} from {node.module}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and str(node.args[1].value).startswith("_")):
            found.append(f"{path.name}:{node.lineno} {node.func.id} {node.args[1].value}")
    return found


def test_no_private_name_of_faust_or_aiokafka_outside_the_wall() -> None:
    outside = [use for path in sorted(PACKAGE.rglob("*.py")) if WALL not in path.parents
               for use in private_uses(path)]
    assert outside == []
    assert private_uses(WALL / "access.py")  # the check finds them where they are


def test_no_test_module_imports_another() -> None:
    imported = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names]
                     if isinstance(node, ast.Import) else [])
            imported += [f"{path.name}: {name}" for name in names
                         if name.split(".")[-1].startswith("test_")]
    assert imported == []
