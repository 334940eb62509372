"""A bounded on-disk journal of alerts that could not be published yet, replayed oldest first.

One pair of files per alert: `<seq>.json` (the Alert JSON) and, optionally, `<seq>.jpg` (its snapshot);
both are written to a temporary name and renamed, so a crash leaves whole entries only. When the journal is
full it drops the oldest snapshots first (the alert survives without its picture), then the oldest alerts,
and counts both.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    alert_json: bytes
    snapshot: bytes | None


class AlertJournal:
    def __init__(self, directory: Path, *, max_entries: int = 100_000, max_bytes: int = 512 * 2**20) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("journal bounds must be positive")
        self.directory = directory
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.dropped_snapshots = 0
        self.dropped_alerts = 0
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        self._alerts: dict[int, int] = {}  # seq -> size of the .json
        self._snapshots: dict[int, int] = {}  # seq -> size of the .jpg
        for path in directory.glob("*.json"):
            if path.stem.isdigit():
                self._alerts[int(path.stem)] = path.stat().st_size
        for path in directory.glob("*.jpg"):
            if path.stem.isdigit():
                if int(path.stem) in self._alerts:
                    self._snapshots[int(path.stem)] = path.stat().st_size
                else:
                    path.unlink(missing_ok=True)  # an orphan of a crash between the two writes
        self._next = max(self._alerts, default=0) + 1
        if self._alerts:
            log.info("journal %s holds %d alerts from an earlier run", directory, len(self._alerts))

    def __len__(self) -> int:
        with self._lock:
            return len(self._alerts)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._alerts.values()) + sum(self._snapshots.values())

    def _path(self, seq: int, suffix: str) -> Path:
        return self.directory / f"{seq:016d}{suffix}"

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def append(self, alert_json: bytes, snapshot: bytes | None = None) -> int:
        with self._lock:
            seq = self._next
            self._next += 1
            if snapshot:
                self._write(self._path(seq, ".jpg"), snapshot)
                self._snapshots[seq] = len(snapshot)
            self._write(self._path(seq, ".json"), alert_json)
            self._alerts[seq] = len(alert_json)
            self._enforce_bounds()
            return seq

    def _enforce_bounds(self) -> None:
        while len(self._alerts) > self.max_entries:
            self._drop_alert(min(self._alerts))
        while sum(self._alerts.values()) + sum(self._snapshots.values()) > self.max_bytes:
            if self._snapshots:
                seq = min(self._snapshots)
                self._path(seq, ".jpg").unlink(missing_ok=True)
                del self._snapshots[seq]
                self.dropped_snapshots += 1
            elif self._alerts:
                self._drop_alert(min(self._alerts))
            else:
                break

    def _drop_alert(self, seq: int) -> None:
        self._remove(seq)
        self.dropped_alerts += 1
        if self.dropped_alerts == 1 or self.dropped_alerts % 100 == 0:
            log.warning("journal %s full: %d alerts dropped so far", self.directory, self.dropped_alerts)

    def _remove(self, seq: int) -> None:
        self._path(seq, ".json").unlink(missing_ok=True)
        self._path(seq, ".jpg").unlink(missing_ok=True)
        self._alerts.pop(seq, None)
        self._snapshots.pop(seq, None)

    def peek(self, limit: int) -> list[JournalEntry]:
        """The oldest `limit` entries, oldest first (they stay until `remove`)."""
        with self._lock:
            seqs = sorted(self._alerts)[:limit]
            entries = []
            for seq in seqs:
                try:
                    raw = self._path(seq, ".json").read_bytes()
                except FileNotFoundError:
                    self._alerts.pop(seq, None)
                    continue
                snap = self._path(seq, ".jpg").read_bytes() if seq in self._snapshots else None
                entries.append(JournalEntry(seq, raw, snap))
            return entries

    def remove(self, seq: int) -> None:
        with self._lock:
            self._remove(seq)
