"""Group commit for the alert journal: one fsync for all the appends of a short window.

An append is in the kernel once `write` returns, so it survives the process; `GroupCommit` makes it survive
the machine. Its thread fsyncs what was written at most `interval_s` after the first unsynced append, or as
soon as `every` appends wait, so a power cut loses at most the appends of one window and of one fsync.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from detection.segments import fsync_dir

log = logging.getLogger(__name__)


class GroupCommit:
    """Commits for one journal. `cond` is the journal's lock; `collect()`, called with it held, marks what
    is written as clean and returns duplicates of the descriptors to fsync (closed here) and the last seq
    written. `appended` and `changed` are called with `cond` held, `sync` and `close` without."""

    def __init__(
        self,
        cond: threading.Condition,
        directory: Path,
        collect: Callable[[], tuple[list[int], int]],
        interval_s: float,
        every: int,
    ) -> None:
        if interval_s <= 0 or every < 1:
            raise ValueError("the commit window must be positive")
        self.cond, self.directory, self.collect = cond, directory, collect
        self.interval_s, self.every = interval_s, every
        self.commits = 0  # fsyncs of the log done
        self.errors = 0
        self.synced_through = 0  # every seq up to this one is on disk
        self._attempted_through = 0  # the last commit, failed or not, covered up to this seq
        self._unsynced = 0  # appends since the last commit began
        self._since = 0.0  # when the first of them was written
        self._dir_dirty = False  # a segment was created, replaced or deleted
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="alert-journal-commit", daemon=True)

    def start(self, synced_through: int) -> None:
        """Everything up to `synced_through` is on disk already (the journal fsynced it when it opened)."""
        self.synced_through = self._attempted_through = synced_through
        self._unsynced, self._dir_dirty = 0, False
        self._thread.start()

    def appended(self) -> None:
        self._unsynced += 1
        if self._unsynced == 1:
            self._since = time.monotonic()
            self.cond.notify()
        elif self._unsynced >= self.every:
            self.cond.notify()

    def changed(self) -> None:
        """The directory changed (the next commit fsyncs it too)."""
        self._dir_dirty = True
        self.cond.notify()

    def sync(self, through: int, timeout: float) -> bool:
        """Commit now and wait until `through` is on disk; False when the commit failed or took too long."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self._since = 0.0  # ends the window
            self.cond.notify_all()
            while self._attempted_through < through and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(min(remaining, 0.5))
            return self.synced_through >= through

    def close(self) -> None:
        """Commit what is written, then stop the thread."""
        with self.cond:
            self._closing = True
            self.cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not (self._unsynced or self._dir_dirty) and not self._closing:
                    self.cond.wait()
                if not (self._unsynced or self._dir_dirty):
                    return  # closing, and everything is on disk
                while self._unsynced < self.every and not self._closing:
                    remaining = self._since + self.interval_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self.cond.wait(remaining)
                fds, through = self.collect()
                sync_dir, self._dir_dirty, self._unsynced = self._dir_dirty, False, 0
            error: OSError | None = None
            try:
                for fd in fds:
                    os.fsync(fd)
                if sync_dir:
                    fsync_dir(self.directory)
            except OSError as exc:
                error = exc
            finally:
                for fd in fds:
                    os.close(fd)
            with self.cond:
                self._attempted_through = max(self._attempted_through, through)
                if error is None:
                    self.commits += 1
                    self.synced_through = max(self.synced_through, through)
                else:  # Linux reports a failed writeback once: say so, count it, carry on
                    self.errors += 1
                    log.error(
                        "journal %s: fsync failed (%s); a power cut may lose more", self.directory, error
                    )
                self.cond.notify_all()
