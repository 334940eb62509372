"""Imports run one way: gridwatch -> ingest, detection, center_api -> contracts -> nothing of the project."""

from __future__ import annotations

import ast
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
