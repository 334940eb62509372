"""Snapshots on disk, content-addressed: `<data_dir>/snapshots/ab/abcdef....jpg` named by SHA-256.

A `ContentStore` (`center_api.blobs`) of JPEGs. The file's modification time is its last use: `put` of
content already stored refreshes it, and the retention sweep (`sweep`, driven by `center_api.retention`)
deletes files last used before a cutoff unless told to keep them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from center_api.blobs import ContentStore, SweepResult

__all__ = ["SnapshotStore", "SweepResult"]


class SnapshotStore(ContentStore):
    def __init__(self, data_dir: Path, max_bytes: int = 4_000_000) -> None:
        super().__init__(Path(data_dir) / "snapshots", ".jpg")
        self.max_bytes = max_bytes

    def refusal(self, data: bytes) -> str | None:
        """Why `data` cannot be stored (over `max_bytes`, not a JPEG), or None (empty data is no refusal)."""
        if len(data) > self.max_bytes:
            return f"snapshot of {len(data)} bytes over snapshot_max_bytes ({self.max_bytes})"
        if data and not data.startswith(b"\xff\xd8"):
            return "snapshot is not a JPEG"
        return None

    def put(self, data: bytes) -> str | None:
        """Store JPEG bytes once; returns the digest, or None for empty, too large or non-JPEG data."""
        if not data or self.refusal(data) is not None:
            return None
        digest = hashlib.sha256(data).hexdigest()
        if not self.refresh(digest):  # the same content again: retention counts from its last use
            self.write(digest, data)
        return digest

    def read(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
