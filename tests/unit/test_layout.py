"""Structure the code promises: small modules, a runner that reads as the path, and no arrow back up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for root in ("api", "operator", "trainer") for p in (REPO / root).rglob("*.py"))
RUNNER = REPO / "trainer" / "finetune_trainer" / "training" / "run.py"


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_no_module_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400, f"{path.relative_to(REPO)}: split it by what its parts do"


def test_no_function_in_the_runner_over_60_lines() -> None:
    tree = ast.parse(RUNNER.read_text())
    long = {
        node.name: node.end_lineno - node.lineno + 1  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60  # type: ignore[operator]
    }
    assert not long, f"runner functions over 60 lines: {long}"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_api_package_imports_neither_the_trainer_nor_the_operator() -> None:
    for path in (REPO / "api").rglob("*.py"):
        upward = {n for n in _imports(path) if n.split(".")[0] in ("finetune_trainer", "finetune_operator")}
        assert not upward, f"{path.relative_to(REPO)} imports {upward}"


def test_the_operator_does_not_import_the_trainer() -> None:
    for path in (REPO / "operator").rglob("*.py"):
        assert not {n for n in _imports(path) if n.startswith("finetune_trainer")}, path
