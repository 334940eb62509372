"""Imports run one way: gridwatch -> ingest, detection, center_api -> contracts -> nothing of the project;
and no two modules import each other, inside a package or across, at any depth (`import_cycles`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = {"contracts", "ingest", "detection", "center_api", "gridwatch"}
ALLOWED = {
    "contracts": set(),
    "ingest": {"contracts"},
    "detection": {"contracts"},
    "center_api": {"contracts"},
    "gridwatch": {"contracts", "ingest", "detection", "center_api"},
}
# Third-party packages that must stay out of a package (the center's image carries no torch or Ultralytics).
FORBIDDEN_THIRD_PARTY = {
    "contracts": {"numpy", "cv2", "av", "redis", "ultralytics", "torch", "fastapi", "sqlalchemy"},
    "center_api": {"ultralytics", "torch"},
    "ingest": {"ultralytics", "torch"},
}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_package_exists() -> None:
    for package in PROJECT:
        assert (REPO / package / "__init__.py").is_file(), package


@pytest.mark.parametrize("package", sorted(PROJECT))
def test_imports_run_one_way(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    bad = []
    for path in files:
        roots = imported_roots(path)
        wrong = (roots & PROJECT) - ALLOWED[package] - {package}
        wrong |= roots & FORBIDDEN_THIRD_PARTY.get(package, set())
        if wrong:
            bad.append(f"{path.relative_to(REPO)} imports {sorted(wrong)}")
    assert not bad, "imports against the architecture:\n" + "\n".join(bad)


def test_the_checker_catches_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nfrom detection.pipeline import X\nimport center_api.app\n"
        "if TYPE_CHECKING:\n    import numpy\n"
    )
    assert imported_roots(module) == {"typing", "detection", "center_api"}


# ----- circles ------------------------------------------------------------------------------------------
def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(root: Path, path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in it: module level, under `if TYPE_CHECKING:` and inside
    functions alike (each still ties the two modules together). `from p import x` names module `p.x` when
    `x` is a module, otherwise `p`; relative imports are resolved; importing `p.q` is not counted as an
    import of the package `p` (its `__init__`), which Python runs first but which is not the dependency."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(root, path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {m for m in found if m in modules and m != me}


def import_cycles(root: Path, packages: Iterable[str]) -> list[list[str]]:
    """Each group of modules that import each other in a circle (a strongly connected component of the
    import graph with more than one module), as a sorted list of module names."""
    paths = {module_name(root, p): p for package in packages for p in sorted((root / package).rglob("*.py"))}
    modules = set(paths)
    graph = {m: sorted(imported_modules(root, p, modules)) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(m: str) -> None:  # Tarjan's algorithm; the import graph is small enough for recursion
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                group.append(n)
                if n == m:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return sorted(cycles)


def test_no_module_imports_itself_back_through_others() -> None:
    cycles = import_cycles(REPO, sorted(PROJECT))
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (  # one side only for type checking, as ingest's worker and metrics once were
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
            "from pkg.a import A\n",
        ),
        ("def f():\n    from pkg import b\n", "import pkg.a\n"),  # function-local on one side
        ("from . import b\n", "from .a import A\n"),  # relative on both
    ],
    ids=["type-checking", "function-local", "relative"],
)
def test_the_checker_catches_a_circle_inside_a_package(tmp_path: Path, first: str, second: str) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(first)
    (package / "b.py").write_text(second)
    (package / "c.py").write_text("from pkg.a import A\n")  # depends on the circle, is not in it
    assert import_cycles(tmp_path, ["pkg"]) == [["pkg.a", "pkg.b"]]
    (package / "b.py").write_text("")
    assert import_cycles(tmp_path, ["pkg"]) == []
