"""What a publisher child handed over: one line per alert id, written once its `publish()` returned.

The kill tests and benchmarks (`tests/detection/test_publisher_durability.py`, `tests/chaos/`, `bench/`) run
the real publisher in a child process, kill it with SIGKILL, and compare this record with what reached Redis
or the store. Each id is one `write` of a whole line: from then on the kernel holds it, whatever becomes of
the child. With `fsync_every_s` the file is also fsynced that often (at most once per interval, from the
writing thread), so that the record is no less durable than the publisher's own journal.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class HandoverLog:
    """Appends ids to `path` (created if missing; a restarted child goes on appending)."""

    def __init__(self, path: Path, fsync_every_s: float | None = None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync_every_s = fsync_every_s
        self._synced_at = time.monotonic()

    def record(self, alert_id: str) -> None:
        os.write(self._fd, f"{alert_id}\n".encode())
        if self._fsync_every_s is not None and time.monotonic() - self._synced_at >= self._fsync_every_s:
            os.fsync(self._fd)
            self._synced_at = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            if self._fsync_every_s is not None:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def handed_over(path: Path) -> list[str]:
    """The ids recorded in `path`, in order; a last line without its newline is not whole and is left out."""
    text = path.read_text() if path.exists() else ""
    return [line for line in text.split("\n")[:-1] if line]
