"""The center's fast start-up reads config YAML through a parsed copy kept by content hash
(`center_api.grid.yamlfile.read_yaml`): exactly what `yaml.safe_load` gives, never a stale copy."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from center_api.grid.yamlfile import read_yaml
from contracts import CameraConfigError
from gridwatch.cli import _check_cameras_file

CAMERAS = """\
cameras:
- id: cam-1
  name: Gate 北
  url: rtsp://user:pa#ss@10.0.0.1/live
  location: {lat: 36.62, lon: 101.78}
  sample_fps: 1.0
  enabled: true
  site_id: null
"""


def _copies(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.json")) if cache_dir.exists() else []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (CAMERAS, True),
        ("cameras: []\n", True),
        ("when: 2026-12-03\n", False),  # a date: JSON would give back a string
        ("1: one\n2: two\n", False),  # integer keys: JSON would give back strings
        ("blob: !!binary aGVsbG8=\n", False),
        ("x: .nan\n", False),
        ("", False),  # an empty document is None: nothing to keep
    ],
)
def test_read_yaml_gives_what_safe_load_gives(tmp_path: Path, text: str, kept: bool) -> None:
    path, cache_dir = tmp_path / "cameras.yaml", tmp_path / "cache"
    path.write_text(text, encoding="utf-8")
    expected = yaml.safe_load(text)
    first = read_yaml(path, cache_dir)
    second = read_yaml(path, cache_dir)
    for got in (first, second):
        if expected == expected:  # NaN is not equal to itself
            assert got == expected
        assert type(got) is type(expected)
    copies = _copies(cache_dir)
    assert len(copies) == (1 if kept else 0)
    for copy in copies:
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # camera URLs carry passwords


def test_a_restart_reads_the_copy_and_an_edited_file_is_parsed_afresh(tmp_path: Path) -> None:
    path, cache_dir = tmp_path / "cameras.yaml", tmp_path / "cache"
    path.write_text(CAMERAS, encoding="utf-8")
    read_yaml(path, cache_dir)
    (copy,) = _copies(cache_dir)
    copy.write_text(json.dumps({"cameras": "from the copy"}))
    assert read_yaml(path, cache_dir) == {"cameras": "from the copy"}  # unchanged file: the copy is read

    path.write_text(CAMERAS.replace("cam-1", "cam-2"), encoding="utf-8")
    assert read_yaml(path, cache_dir)["cameras"][0]["id"] == "cam-2"
    assert [p.name for p in _copies(cache_dir)] != [copy.name]
    assert len(_copies(cache_dir)) == 1  # the older copy is gone

    (newer,) = _copies(cache_dir)
    newer.write_bytes(b"{damaged")
    assert read_yaml(path, cache_dir)["cameras"][0]["id"] == "cam-2"


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    path, not_a_dir = tmp_path / "cameras.yaml", tmp_path / "cache"
    path.write_text(CAMERAS, encoding="utf-8")
    not_a_dir.write_text("a file where the cache directory would be")
    assert read_yaml(path, not_a_dir) == yaml.safe_load(CAMERAS)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"cameras: [\n", "not valid YAML"),
        (b"cameras:\n- id: \xff\xfe\n", "not valid YAML"),  # not UTF-8
        (b"cameras:\n- id: cam-1\n- id: cam-1\n", "cam-1"),
    ],
)
def test_the_cli_check_names_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_bytes(content)
    with pytest.raises(CameraConfigError) as caught:
        _check_cameras_file(path, tmp_path / "cache")
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)
