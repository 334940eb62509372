"""Bad city configuration is refused by `gridwatch center` with one clear line naming file and feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.stack import DEMO_CONFIG, REPO


def _grid(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads((path / "grid.geojson").read_text())
    edit(data)
    (path / "grid.geojson").write_text(json.dumps(data))


def _feature(data: dict, feature_id: str) -> dict:
    return next(f for f in data["features"] if f["properties"]["id"] == feature_id)


def malformed_polygon(path: Path) -> None:
    bow_tie = [[[101.78, 36.61], [101.79, 36.6175], [101.79, 36.61], [101.78, 36.6175], [101.78, 36.61]]]
    _grid(path, lambda d: _feature(d, "c-nanguan-02")["geometry"].update(coordinates=bow_tie))


def unknown_station(path: Path) -> None:
    _grid(path, lambda d: _feature(d, "c-xiadu-03")["properties"].update(station="st-nowhere"))


def duplicate_cell_id(path: Path) -> None:
    _grid(path, lambda d: _feature(d, "c-xiadu-03")["properties"].update(id="c-xiadu-02"))


def duplicate_camera_id(path: Path) -> None:
    data = yaml.safe_load((path / "cameras.yaml").read_text())
    data["cameras"].append(dict(data["cameras"][0]))
    (path / "cameras.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (malformed_polygon, ["grid.geojson", "c-nanguan-02"]),
        (unknown_station, ["grid.geojson", "c-xiadu-03", "st-nowhere"]),
        (duplicate_cell_id, ["grid.geojson", "c-xiadu-02"]),
        (duplicate_camera_id, ["cameras.yaml", "demo-cam-1", "duplicate"]),
    ],
)
def test_center_refuses_bad_config_without_a_traceback(
    tmp_path: Path, breaker: Callable[[Path], None], expected: list[str], redis_url: str
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for item in DEMO_CONFIG.iterdir():
        (config / item.name).write_bytes(item.read_bytes())
    breaker(config)
    env = {k: v for k, v in os.environ.items() if k != "GRIDWATCH_DATABASE_URL"}  # SQLite in the data dir
    env.update(
        GRIDWATCH_CONFIG_DIR=str(config),
        GRIDWATCH_DATA_DIR=str(tmp_path / "data"),
        GRIDWATCH_REDIS_URL=redis_url,
        GRIDWATCH_JWT_SECRET="x" * 32,
    )
    result = subprocess.run(
        [sys.executable, "-m", "gridwatch", "center", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error_line = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_line, result.stderr[-2000:]
    for word in expected:
        assert word in error_line[0], error_line[0]
