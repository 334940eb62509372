"""Snapshots on disk, content-addressed: `<data_dir>/snapshots/ab/abcdef....jpg` named by SHA-256."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_HASH = re.compile(r"^[0-9a-f]{64}$")


class SnapshotStore:
    def __init__(self, data_dir: Path, max_bytes: int = 4_000_000) -> None:
        self.root = Path(data_dir) / "snapshots"
        self.max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        if not _HASH.match(digest):
            raise ValueError("not a sha256 hex digest")
        return self.root / digest[:2] / f"{digest}.jpg"

    def put(self, data: bytes) -> str | None:
        """Store JPEG bytes once; returns the digest, or None for empty, too large or non-JPEG data."""
        if not data or len(data) > self.max_bytes or not data.startswith(b"\xff\xd8"):
            return None
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        return digest

    def read(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
