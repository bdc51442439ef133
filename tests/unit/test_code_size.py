"""The package stays readable in pieces: no module of cxstream/ over 400 lines and no
function over 60 (nested functions count in their own right and in their parent's).
Each test names the largest, so a failure says where to split."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cxstream"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_lines(root: Path = PACKAGE) -> list[tuple[int, str]]:
    return sorted(((len(path.read_text().splitlines()), str(path.relative_to(root)))
                   for path in root.rglob("*.py")), reverse=True)


def function_lines(root: Path = PACKAGE) -> list[tuple[int, str]]:
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                found.append((length, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def test_no_module_is_over_400_lines() -> None:
    sizes = module_lines()
    assert len(sizes) > 50  # the package was found and read
    print("longest modules:", sizes[:5])
    assert sizes[0][0] <= MAX_MODULE_LINES, f"over {MAX_MODULE_LINES} lines: " + ", ".join(
        f"{name} ({lines})" for lines, name in sizes if lines > MAX_MODULE_LINES)


def test_no_function_is_over_60_lines() -> None:
    sizes = function_lines()
    assert len(sizes) > 500
    print("longest functions:", sizes[:5])
    assert sizes[0][0] <= MAX_FUNCTION_LINES, f"over {MAX_FUNCTION_LINES} lines: " + ", ".join(
        f"{name} ({lines})" for lines, name in sizes if lines > MAX_FUNCTION_LINES)


def test_the_measure_counts_a_long_function_and_a_long_module(tmp_path: Path) -> None:
    """The measure itself: a 61-line function is over, a 60-line one is not, and a nested
    function counts in its own right."""
    body = "\n".join(f"    x{n} = {n}" for n in range(59))
    (tmp_path / "a.py").write_text(f"def long():\n{body}\n    return 0\n\n\n"
                                   f"def short():\n{body}\n")
    (tmp_path / "b.py").write_text("def outer():\n    def inner():\n        pass\n")
    assert function_lines(tmp_path) == [(61, "a.py:1 long"), (60, "a.py:64 short"),
                                        (3, "b.py:1 outer"), (2, "b.py:2 inner")]
    assert module_lines(tmp_path) == [(123, "a.py"), (3, "b.py")]
