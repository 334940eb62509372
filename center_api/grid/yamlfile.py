"""Read a config YAML file fast: libyaml's C loader, and a JSON copy of the result kept by content hash.

A city's `cameras.yaml` (8,502 cameras, 2 MB) takes PyYAML's pure-Python loader about 11 s and even the C
loader 1-2 s, because the objects are still built in Python; `json` reads the same data in a few
hundredths of a second. `read_yaml(path, cache_dir)` keys the copy by the SHA-256 of the file's bytes (and
the PyYAML version), so an edited file is parsed afresh and an unchanged one, at a restart, is not. A copy is
written only when JSON gives back exactly what YAML gave (no dates, binary or non-string keys), atomically
(a temporary file renamed), readable by its owner only (camera URLs carry passwords), and it replaces the
older copies of the same file. A cache that cannot be read or written is skipped, never an error.

YAMLError (from PyYAML) -- the file is not valid YAML
OSError                  -- the file cannot be read
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

# libyaml's loader when PyYAML was built with it (the wheels are), else the pure-Python one.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str | bytes) -> Any:
    """`yaml.safe_load` with the C loader (bytes: UTF-8 or UTF-16, bad bytes are a `YAMLError`)."""
    return yaml.load(text, Loader=SAFE_LOADER)


def _cache_path(path: Path, raw: bytes, cache_dir: Path) -> Path:
    digest = hashlib.sha256(yaml.__version__.encode() + b"\0" + raw).hexdigest()
    return cache_dir / f"{path.name}.{digest[:40]}.json"


def _read_cached(cached: Path) -> Any:
    try:
        return json.loads(cached.read_bytes())
    except (OSError, ValueError):
        return None  # none yet, or damaged: parse the YAML


def _write_cached(cached: Path, source_name: str, data: Any) -> None:
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return  # dates, binary, sets, NaN: JSON cannot hold them as they are
    if json.loads(text) != data:
        return  # e.g. integer keys would come back as strings
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-", suffix=".json")  # mode 600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, cached)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for older in cached.parent.glob(f"{glob.escape(source_name)}.*.json"):
            if older != cached:
                with contextlib.suppress(OSError):
                    older.unlink()
    except OSError as exc:
        log.warning("cannot keep a parsed copy of %s in %s: %s", cached.name, cached.parent, exc)


def read_yaml(path: Path, cache_dir: Path | None = None) -> Any:
    """The data of the YAML file `path` (as `yaml.safe_load` gives it); with `cache_dir`, through the copy."""
    raw = Path(path).read_bytes()
    if cache_dir is None:
        return parse_yaml(raw)
    cached = _cache_path(Path(path), raw, cache_dir)
    data = _read_cached(cached)
    if data is not None:
        return data
    data = parse_yaml(raw)
    if data is not None:
        _write_cached(cached, Path(path).name, data)
    return data
