"""Snapshots on disk, content-addressed: `<data_dir>/snapshots/ab/abcdef....jpg` named by SHA-256.

The file's modification time is its last use: `put` of content already stored refreshes it, and the retention
sweep (`sweep`, driven by `center_api.retention`) deletes files last used before a cutoff unless told to keep
them. Shard directories (at most 256) are never removed; an emptied one is reused by the next `put`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path

_HASH = re.compile(r"^[0-9a-f]{64}$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_SNAPSHOT = re.compile(r"^([0-9a-f]{64})\.jpg$")
_TMP = re.compile(r"^[0-9a-f]{64}\.\d+\.tmp$")


@dataclass(slots=True)
class SweepResult:
    """What one sweep removed; `failed` counts files it could not delete (`first_error` names one)."""

    deleted: int = 0
    tmp_removed: int = 0
    bytes_freed: int = 0
    failed: int = 0
    first_error: str | None = None


class SnapshotStore:
    def __init__(self, data_dir: Path, max_bytes: int = 4_000_000) -> None:
        self.root = Path(data_dir) / "snapshots"
        self.max_bytes = max_bytes
        # Orders "refresh the mtime of existing content" in put() against "re-check the mtime and unlink" in
        # the sweep, so a snapshot reused while a sweep runs is never deleted under the incident that uses it.
        self._lock = threading.Lock()

    def path(self, digest: str) -> Path:
        if not _HASH.match(digest):
            raise ValueError("not a sha256 hex digest")
        return self.root / digest[:2] / f"{digest}.jpg"

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
        path = self.path(digest)
        with self._lock:
            try:
                os.utime(path)  # the same content again: retention counts from its last use
                return digest
            except FileNotFoundError:
                pass
            except PermissionError:
                return digest  # a file we may not touch: retention counts from when it was written
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

    def entries(self) -> Iterator[os.DirEntry[str]]:
        """Every file in the shard directories, one at a time (a generator: no list of a million paths)."""
        try:
            shards = os.scandir(self.root)
        except FileNotFoundError:
            return
        with shards:
            for shard in shards:
                if not (_SHARD.match(shard.name) and shard.is_dir(follow_symlinks=False)):
                    continue
                try:
                    files = os.scandir(shard.path)
                except FileNotFoundError:
                    continue
                with files:
                    yield from files

    def sweep(
        self,
        keep: Container[str],
        cutoff: float,
        tmp_cutoff: float,
        stop: threading.Event | None = None,
    ) -> SweepResult:
        """Delete snapshots last used before `cutoff` (epoch seconds) whose digest is not in `keep`, and
        temporary files of interrupted writes older than `tmp_cutoff`. Blocking: run it in a thread; `stop`
        ends it early (at shutdown). Files it does not recognise are left alone."""
        result = SweepResult()
        for entry in self.entries():
            if stop is not None and stop.is_set():
                break
            snapshot = _SNAPSHOT.match(entry.name)
            if snapshot is not None:
                if snapshot.group(1) not in keep:
                    self._remove(entry, cutoff, result, is_tmp=False)
            elif _TMP.match(entry.name):
                self._remove(entry, tmp_cutoff, result, is_tmp=True)
        return result

    def _remove(self, entry: os.DirEntry[str], cutoff: float, result: SweepResult, *, is_tmp: bool) -> None:
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                return  # the cheap, cached check first; most files are recent
            with self._lock:
                st = os.stat(entry.path, follow_symlinks=False)  # put() may have just refreshed it
                if st.st_mtime >= cutoff:
                    return
                os.unlink(entry.path)
        except FileNotFoundError:
            return  # already gone (another replica's sweep, or a writer's os.replace)
        except OSError as exc:
            result.failed += 1
            result.first_error = result.first_error or f"{entry.path}: {exc.strerror or exc}"
            return
        result.bytes_freed += st.st_size
        if is_tmp:
            result.tmp_removed += 1
        else:
            result.deleted += 1
