"""The worker's on-disk clip spool: finished clips wait here, content-addressed, until the center has them.

A directory holds
  `<sha256>.mp4` + `<sha256>.json`   a clip and its `ClipMeta` (the digest is the MP4's SHA-256)
  `failure-<ns>-<hex>.json`          a `ClipFailure` waiting to be reported
  `tmp-*`                            staging files of clips being recorded, and half-written JSON
  `lock`                             flock-ed by the one open spool (`SpoolInUse` otherwise)

Adding a clip (`add`): hash the staged file, fsync it, write `<sha>.json` (temp file, fsync, rename),
rename the MP4 to `<sha>.mp4` and fsync the directory. The MP4's rename is the commit point: a clip is in the
spool once `<sha>.mp4` exists. The same content twice is one entry, whose meta gets the alert ids of both.
A kill -9 at any point leaves either a complete entry or leftovers that opening the spool removes: `tmp-*`
files, a `<sha>.json` without its MP4, an MP4 without its JSON, and a clip whose content does not hash to its
name (a torn write after a power cut) — the last two counted as `dropped_corrupt`.

Bounds: `max_bytes` of MP4 and `max_files` clips, not counting the one the uploader is sending (the disk
holds at most that one more). An add that goes over them drops the oldest clips (never the one being sent),
counts them (`dropped_clips`, `dropped_bytes`), logs, and spools a `ClipFailure` for each, so the center
learns that the clip it was promised will not come. At most `max_failures` failure reports are kept (the
oldest go first, counted in `dropped_failures`).

The uploader takes the oldest item with `checkout` and hands it back with `finish` (removed once delivered).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from contracts import ClipFailure, ClipMeta
from contracts.clips import MAX_CLIP_ALERTS

log = logging.getLogger(__name__)

GiB = 2**30
_CHUNK = 1 << 20
_CLIP = re.compile(r"^([0-9a-f]{64})\.(mp4|json)$")
_FAILURE = re.compile(r"^failure-\d{20}-[0-9a-f]{8}\.json$")
_TMP_PREFIX = "tmp-"


class SpoolInUse(RuntimeError):
    """Another open spool (in this process or another) holds the directory."""


@dataclass(frozen=True, slots=True)
class SpoolItem:
    """One thing waiting for the center: a clip (`name` is its digest) or a failure report (a file name)."""

    kind: Literal["clip", "failure"]
    name: str
    size: int  # MP4 bytes of a clip, JSON bytes of a failure
    spooled_at: float  # wall-clock seconds


@dataclass(frozen=True, slots=True)
class SpoolStats:
    clips: int
    clip_bytes: int
    failures: int
    oldest_age_s: float  # of the oldest item waiting; 0 when empty
    dropped_clips: int
    dropped_bytes: int
    dropped_failures: int
    dropped_corrupt: int


class ClipSpool:
    """Implements ingest.clips' `ClipSpoolLike` (structurally). Thread-safe; one per directory."""

    def __init__(
        self, directory: Path, max_bytes: int = 2 * GiB, max_files: int = 2000, max_failures: int = 1000
    ) -> None:
        if max_bytes < 1 or max_files < 1 or max_failures < 1:
            raise ValueError("spool bounds must be positive")
        self.directory = directory
        self.max_bytes, self.max_files, self.max_failures = max_bytes, max_files, max_failures
        self.dropped_clips = self.dropped_bytes = self.dropped_failures = self.dropped_corrupt = 0
        self._items: OrderedDict[str, SpoolItem] = OrderedDict()  # oldest first; key: digest or file name
        self._clip_bytes = 0
        self._clip_count = 0
        self._in_flight: str | None = None
        self._resend: set[str] = set()  # in flight when more alert ids joined: sent again before removal
        self._closed = False
        self._cond = threading.Condition()
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolInUse(f"clip spool {directory} is open elsewhere (one worker per directory)") from None
        try:
            self._recover()
            with self._cond:
                self._enforce_bounds()
        except BaseException:
            os.close(self._lock_fd)
            raise
        if self._items:
            log.info(
                "clip spool %s holds %d clips (%d bytes) and %d failure reports from an earlier run",
                directory,
                self._clip_count,
                self._clip_bytes,
                len(self._items) - self._clip_count,
            )

    # --- the recorder's side (ClipSpoolLike) -----------------------------------------------------------
    def staging_path(self) -> Path:
        """A fresh path in the spool directory (same filesystem, so `add` can rename it); removed at the next
        start if the process dies before `add`."""
        return self.directory / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.mp4"

    def add(self, staged: Path, meta: ClipMeta) -> str:
        """Move a finished clip into the spool; its SHA-256 (hex). Durable when this returns. Raises
        ValueError for a file outside the spool directory or an empty one, OSError when the disk refuses."""
        if staged.parent.resolve() != self.directory.resolve():
            raise ValueError(f"{staged} is not a staging path of the spool {self.directory}")
        digest, size = _hash_and_sync(staged)  # outside the lock: other adds and the uploader go on
        if size == 0:
            staged.unlink(missing_ok=True)
            raise ValueError(f"{staged} is empty")
        if meta.bytes != size:
            log.warning(
                "clip of camera %s: meta says %d bytes, the file has %d", meta.camera_id, meta.bytes, size
            )
            meta = meta.model_copy(update={"bytes": size})
        with self._cond:
            if self._closed:
                raise ValueError(f"clip spool {self.directory} is closed")
            if digest in self._items:
                staged.unlink(missing_ok=True)
                self._merge_meta(digest, meta)
                return digest
            if size > self.max_bytes:
                staged.unlink(missing_ok=True)
                self._count_dropped(size)
                self._write_failure(
                    _failure_of(meta, f"clip of {size} bytes exceeds the spool's {self.max_bytes}")
                )
                return digest
            _write_atomic(self.directory, f"{digest}.json", meta.model_dump_json().encode())
            os.replace(staged, self.directory / f"{digest}.mp4")
            _fsync_dir(self.directory)
            self._items[digest] = SpoolItem("clip", digest, size, time.time())
            self._clip_bytes += size
            self._clip_count += 1
            self._enforce_bounds()
            self._cond.notify_all()
        return digest

    def add_failure(self, failure: ClipFailure) -> None:
        """Spool a report of a clip that will not come (durable when this returns)."""
        with self._cond:
            if self._closed:
                raise ValueError(f"clip spool {self.directory} is closed")
            self._write_failure(failure)
            self._enforce_bounds()
            self._cond.notify_all()

    # --- the uploader's side ---------------------------------------------------------------------------
    def checkout(self) -> SpoolItem | None:
        """The oldest item, held for the caller until `finish` (bounds never drop it meanwhile)."""
        with self._cond:
            if self._in_flight is not None:
                raise RuntimeError("one item at a time: finish the last one first")
            for item in self._items.values():
                self._in_flight = item.name
                return item
            return None

    def finish(self, item: SpoolItem, *, remove: bool) -> None:
        """Give `item` back; with `remove`, delete it (the center has it, or refused it for good)."""
        with self._cond:
            if self._in_flight == item.name:
                self._in_flight = None
            if item.name in self._resend:
                self._resend.discard(item.name)
                remove = False  # the center has the clip but not every alert id of it yet
            if remove and not self._closed and self._items.get(item.name) == item:
                self._remove(item)
            self._enforce_bounds()  # an add that found the item in flight may have left the spool over

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for an item; True when there is one."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout) and bool(
                self._items
            )

    def clip_path(self, item: SpoolItem) -> Path:
        return self.directory / f"{item.name}.mp4"

    def meta(self, item: SpoolItem) -> ClipMeta:
        """The clip's meta; ValueError when its file does not hold one."""
        return ClipMeta.model_validate_json((self.directory / f"{item.name}.json").read_bytes())

    def failure(self, item: SpoolItem) -> ClipFailure:
        return ClipFailure.model_validate_json((self.directory / item.name).read_bytes())

    # --- state -----------------------------------------------------------------------------------------
    def stats(self) -> SpoolStats:
        with self._cond:
            oldest = next(iter(self._items.values()), None)
            return SpoolStats(
                clips=self._clip_count,
                clip_bytes=self._clip_bytes,
                failures=len(self._items) - self._clip_count,
                oldest_age_s=max(0.0, time.time() - oldest.spooled_at) if oldest else 0.0,
                dropped_clips=self.dropped_clips,
                dropped_bytes=self.dropped_bytes,
                dropped_failures=self.dropped_failures,
                dropped_corrupt=self.dropped_corrupt,
            )

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        """Release the directory; what it holds stays for the next run."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        os.close(self._lock_fd)

    # --- internals (under the lock) --------------------------------------------------------------------
    def _write_failure(self, failure: ClipFailure) -> None:
        name = f"failure-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        data = failure.model_dump_json().encode()
        _write_atomic(self.directory, name, data)
        _fsync_dir(self.directory)
        self._items[name] = SpoolItem("failure", name, len(data), time.time())

    def _merge_meta(self, digest: str, meta: ClipMeta) -> None:
        """The same content again for other alerts: still one clip, linked to every alert (a repeated upload
        links its new alert ids at the center too)."""
        try:
            held = self.meta(self._items[digest])
        except (OSError, ValueError):
            return
        room = MAX_CLIP_ALERTS - len(held.alert_ids)
        joined = [
            (alert_id, offset)
            for alert_id, offset in zip(meta.alert_ids, meta.alert_offsets_s, strict=True)
            if alert_id not in held.alert_ids
        ][: max(0, room)]
        if not joined:
            return
        merged = held.model_copy(
            update={
                "alert_ids": held.alert_ids + tuple(a for a, _ in joined),
                "alert_offsets_s": held.alert_offsets_s + tuple(min(o, held.duration_s) for _, o in joined),
            }
        )
        _write_atomic(self.directory, f"{digest}.json", merged.model_dump_json().encode())
        _fsync_dir(self.directory)
        if digest == self._in_flight:
            self._resend.add(digest)

    def _remove(self, item: SpoolItem) -> None:
        del self._items[item.name]
        if item.kind == "clip":
            self._clip_bytes -= item.size
            self._clip_count -= 1
            # the MP4 first: a kill between the two leaves a JSON alone, which opening removes
            (self.directory / f"{item.name}.mp4").unlink(missing_ok=True)
            (self.directory / f"{item.name}.json").unlink(missing_ok=True)
        else:
            (self.directory / item.name).unlink(missing_ok=True)

    def _enforce_bounds(self) -> None:
        failures = len(self._items) - self._clip_count
        # the clip being sent does not count while in flight: it is likely gone in a moment, so the disk
        # holds at most one clip over the bounds rather than losing a newer one for it
        sending = self._items.get(self._in_flight) if self._in_flight is not None else None
        spare_bytes, spare_files = (
            (sending.size, 1) if sending is not None and sending.kind == "clip" else (0, 0)
        )
        while (
            self._clip_bytes - spare_bytes > self.max_bytes or self._clip_count - spare_files > self.max_files
        ):
            victim = next(
                (i for i in self._items.values() if i.kind == "clip" and i.name != self._in_flight), None
            )
            if victim is None:
                break
            try:
                failure: ClipFailure | None = _failure_of(
                    self.meta(victim), "the worker's clip spool was full"
                )
            except (OSError, ValueError):
                failure = None
            self._remove(victim)
            self._count_dropped(victim.size)
            if failure is not None:
                self._write_failure(failure)
                failures += 1
        while failures > self.max_failures:
            victim = next(
                (i for i in self._items.values() if i.kind == "failure" and i.name != self._in_flight), None
            )
            if victim is None:
                break
            self._remove(victim)
            self.dropped_failures += 1
            failures -= 1

    def _count_dropped(self, size: int) -> None:
        self.dropped_clips += 1
        self.dropped_bytes += size
        if self.dropped_clips == 1 or self.dropped_clips % 100 == 0:
            log.warning(
                "clip spool %s full (%d bytes / %d clips at most): %d clips dropped so far, oldest first",
                self.directory,
                self.max_bytes,
                self.max_files,
                self.dropped_clips,
            )

    def _recover(self) -> None:
        """Read back what an earlier run left: complete entries stay, leftovers of a kill go."""
        clips: dict[str, set[str]] = {}
        found: list[tuple[int, str, SpoolItem]] = []
        removed = False
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.startswith(_TMP_PREFIX) or name.endswith(".tmp"):
                os.unlink(entry.path)
                removed = True
            elif match := _CLIP.match(name):
                clips.setdefault(match[1], set()).add(match[2])
            elif _FAILURE.match(name):
                try:
                    ClipFailure.model_validate_json(Path(entry.path).read_bytes())
                except ValidationError:
                    log.warning(
                        "clip spool %s: removing an unreadable failure report %s", self.directory, name
                    )
                    os.unlink(entry.path)
                    removed = True
                    continue
                st = entry.stat()
                found.append((st.st_mtime_ns, name, SpoolItem("failure", name, st.st_size, st.st_mtime)))
        for digest, parts in clips.items():
            item = self._recover_clip(digest, parts)
            if item is None:
                removed = True
            else:
                found.append((int(item.spooled_at * 1e9), digest, item))
        for _, _, item in sorted(found, key=lambda f: (f[0], f[1])):
            self._items[item.name] = item
            if item.kind == "clip":
                self._clip_bytes += item.size
                self._clip_count += 1
        if removed:
            _fsync_dir(self.directory)

    def _recover_clip(self, digest: str, parts: set[str]) -> SpoolItem | None:
        mp4, meta = self.directory / f"{digest}.mp4", self.directory / f"{digest}.json"
        if parts == {"json"}:  # killed before the MP4's rename: the clip never entered the spool
            meta.unlink()
            return None
        reason = None
        if parts == {"mp4"}:
            reason = "no meta"
        else:
            try:
                ClipMeta.model_validate_json(meta.read_bytes())
            except ValidationError:
                reason = "unreadable meta"
        if reason is None:
            actual, size = _hash_and_sync(mp4)
            if actual != digest:
                reason = "content does not match its name (torn write)"
        if reason is not None:
            log.warning("clip spool %s: dropping clip %s: %s", self.directory, digest, reason)
            self.dropped_corrupt += 1
            mp4.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
            return None
        return SpoolItem("clip", digest, size, mp4.stat().st_mtime)


def _failure_of(meta: ClipMeta, reason: str) -> ClipFailure:
    return ClipFailure(
        camera_id=meta.camera_id, alert_ids=meta.alert_ids, reason=reason, worker_id=meta.worker_id
    )


def _hash_and_sync(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of `path`, fsynced."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(fh.fileno())
    return digest.hexdigest(), size


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    """`directory/name` holds `data` whole or not at all (the caller fsyncs the directory)."""
    tmp = directory / f"{_TMP_PREFIX}{uuid.uuid4().hex}.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, directory / name)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
