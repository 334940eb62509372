"""Files on disk, content-addressed: `<root>/ab/abcdef....<suffix>` named by their SHA-256.

The snapshot store (`center_api.snapshots`, JPEGs) and the clip store (`center_api.clips.files`, MP4s) are
both one of these. A file arrives as a temporary file in its shard (`<digest>.<n>.tmp`) and is moved into
place atomically, so a reader never sees half a file. The file's modification time is its last use where
the store keeps no other record (`refresh`); `sweep` deletes files last used before a cutoff unless told to
keep them, and temporary files an interrupted write left behind. Shard directories (at most 256) are never
removed; an emptied one is reused by the next write.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path

DIGEST = re.compile(r"^[0-9a-f]{64}$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_TMP = re.compile(r"^[0-9a-f]{64}\.\d+\.tmp$")


@dataclass(slots=True)
class SweepResult:
    """What one sweep removed; `failed` counts files it could not delete (`first_error` names one)."""

    deleted: int = 0
    tmp_removed: int = 0
    bytes_freed: int = 0
    failed: int = 0
    first_error: str | None = None


class ContentStore:
    """Content-addressed files of one kind (`suffix`, e.g. ".jpg") under `root`."""

    def __init__(self, root: Path, suffix: str) -> None:
        self.root = Path(root)
        self.suffix = suffix
        self._name = re.compile(rf"^([0-9a-f]{{64}}){re.escape(suffix)}$")
        self._tmp_serial = itertools.count()
        # Orders "refresh the mtime of existing content" against "re-check the mtime and unlink" in the
        # sweep, so a file reused while a sweep runs is never deleted under the record that uses it.
        self._lock = threading.Lock()

    def path(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise ValueError("not a sha256 hex digest")
        return self.root / digest[:2] / f"{digest}{self.suffix}"

    def temporary(self, digest: str) -> Path:
        """A fresh temporary path in `digest`'s shard (created): unique per process and call, so two
        writes of the same content never share one; the sweep removes it once stale."""
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f"{digest}.{os.getpid()}{next(self._tmp_serial):06d}.tmp")

    def refresh(self, digest: str) -> bool:
        """Mark stored content as used now; False when it is not stored. A file we may not touch counts
        as stored (retention then counts from when it was written)."""
        with self._lock:
            try:
                os.utime(self.path(digest))
            except FileNotFoundError:
                return False
            except PermissionError:
                pass
        return True

    def place(self, tmp: Path, digest: str) -> Path:
        """Move a finished temporary file into place (atomic: a reader never sees half a file)."""
        path = self.path(digest)
        os.replace(tmp, path)
        return path

    def write(self, digest: str, data: bytes) -> None:
        """Store `data` (whose SHA-256 is `digest`) through a temporary file."""
        tmp = self.temporary(digest)
        tmp.write_bytes(data)
        self.place(tmp, digest)

    def delete(self, digest: str) -> int:
        """Remove stored content; the bytes freed (0 when it was not there)."""
        path = self.path(digest)
        with self._lock:
            try:
                size = os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                return 0
        return size

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
        """Delete files last used before `cutoff` (epoch seconds) whose digest is not in `keep`, and
        temporary files of interrupted writes older than `tmp_cutoff`. Blocking: run it in a thread; `stop`
        ends it early (at shutdown). Files it does not recognise are left alone."""
        result = SweepResult()
        for entry in self.entries():
            if stop is not None and stop.is_set():
                break
            stored = self._name.match(entry.name)
            if stored is not None:
                if stored.group(1) not in keep:
                    self._remove(entry, cutoff, result, is_tmp=False)
            elif _TMP.match(entry.name):
                self._remove(entry, tmp_cutoff, result, is_tmp=True)
        return result

    def _remove(self, entry: os.DirEntry[str], cutoff: float, result: SweepResult, *, is_tmp: bool) -> None:
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                return  # the cheap, cached check first; most files are recent
            with self._lock:
                st = os.stat(entry.path, follow_symlinks=False)  # `refresh` may have just touched it
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
