"""mypy passes over the packages, with the `[tool.mypy]` configuration of pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import REPO

PACKAGES = ("contracts", "ingest", "detection", "center_api", "gridwatch")


@pytest.mark.timeout(900)  # a cold run (no .mypy_cache) reads numpy, torch, SQLAlchemy: up to a few minutes
def test_mypy_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", *PACKAGES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert proc.returncode == 0, f"mypy failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
