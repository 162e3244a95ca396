"""Structure the code promises: small modules, a runner that reads as the path, no arrow back up, no circles."""

from __future__ import annotations

import ast
import graphlib
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


def _module_names() -> dict[str, Path]:
    names = {}
    for path in SOURCES:
        parts = list(path.relative_to(REPO).with_suffix("").parts[1:])  # api/finetune_api/x.py -> finetune_api.x
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of our own modules, wherever written: at the top, in a function, for type checks.

    `from pkg import name` counts as importing pkg.name when that is a module, else pkg itself.
    """
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                targets |= {f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_import_circles() -> None:
    # A circle makes import order matter (a name is missing while its module is half-imported), and
    # hides which of two modules is the lower layer; the fix is the shared part moved below both.
    found = circle(import_graph(_module_names()))
    assert found is None, "import circle: " + " -> ".join(found or [])


def test_the_circle_check_finds_a_circle_inside_a_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from . import a  # a lazy import is a circle all the same\n")
    (pkg / "c.py").write_text("from pkg.a import thing\n")
    modules = {"pkg": pkg / "__init__.py", **{f"pkg.{m}": pkg / f"{m}.py" for m in "abc"}}
    graph = import_graph(modules)
    assert graph["pkg.c"] == {"pkg.a"}
    assert set(circle(graph) or []) == {"pkg.a", "pkg.b"}
    (pkg / "b.py").write_text("thing = 1\n")
    assert circle(import_graph(modules)) is None
