"""The publisher's bounded write-ahead journal: an append-only log of alerts, group-committed, oldest first.

Every alert handed to the publisher is appended here before it is sent, and forgotten (`ack`) only once Redis
holds it. A directory holds `<n>.seg` segments (their record format: `detection.segments`), `head` (the first
seq not yet acknowledged, rewritten in place by `ack`) and `lock` (flock-ed by the one open journal).

Durability. `append` writes the whole record with one `writev` before it returns: from then on the record is
in the kernel and survives the death of the process (kill -9, an OOM kill, a crash). A commit thread
(`detection.commit`) fsyncs the log in groups: at most `commit_interval_s` after the first unsynced append,
sooner once `commit_every` appends wait. A power cut or a kernel crash therefore loses at most the records
appended in the last window and during one fsync. `head` is never fsynced: after a power cut it may point at
records Redis already had, which are then sent again (the publisher's sent markers make that a no-op).

Opening reads the log back, cutting each segment at the first record that does not hold (a torn tail), and
moves an earlier journal's `<seq>.json` + `<seq>.jpg` pairs into the log. A segment is deleted once every
record in it is acknowledged, so with Redis up the disk holds one or two segments.

Bounds: `max_entries`, and `max_bytes` of alert and snapshot bytes held (each record adds 20 bytes). An append
that goes over `max_entries` drops the oldest alerts; one that goes over `max_bytes` drops the oldest
snapshots first (the alert stays, without its picture) until the journal is `slack` bytes (`max_bytes` / 16,
at most one segment) under `max_bytes`, then the oldest alerts. Both are counted: `dropped_alerts` (alerts
gone unsent, with whatever snapshot they still had) and `dropped_snapshots` (snapshots taken off an alert,
also when that alert is dropped later). An entry the sender has in flight (handed out by `peek`) when a bound
takes it counts only once the sender knows Redis did not take it (`ack` short of it, or `release`): one that
arrives is not dropped. Segments that lost snapshots are rewritten, and segments whose every record was
dropped are deleted at once, so that the disk holds what the journal holds plus at most one segment, however
long the outage.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType

from detection import segments
from detection.commit import GroupCommit
from detection.segments import MAX_FIELD, Segment

log = logging.getLogger(__name__)


class JournalInUse(RuntimeError):
    """Another open journal (in this process or another) holds the directory."""


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    alert_json: bytes
    snapshot: bytes | None


class _Slot:
    """Where one held entry lives; `snap_len` is 0 once its snapshot was dropped."""

    __slots__ = ("seq", "segment", "offset", "alert_len", "snap_len")

    def __init__(self, seq: int, segment: Segment, offset: int, alert_len: int, snap_len: int) -> None:
        self.seq, self.segment, self.offset = seq, segment, offset
        self.alert_len, self.snap_len = alert_len, snap_len


class AlertJournal:
    def __init__(
        self,
        directory: Path,
        *,
        max_entries: int = 100_000,
        max_bytes: int = 512 * 2**20,
        segment_bytes: int | None = None,
        commit_interval_s: float = 0.05,
        commit_every: int = 256,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("journal bounds must be positive")
        self.directory = directory
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.segment_bytes = segment_bytes or min(16 * 2**20, max(64 * 2**10, max_bytes // 8))
        self.slack = min(self.segment_bytes, max_bytes // 16)  # snapshot drops free this much more, in one go
        self.dropped_snapshots = 0
        self.dropped_alerts = 0
        self._sending_through = 0  # the last seq `peek` handed out, until `ack` or `release`
        self._dropped_sending: list[int] = []  # in-flight drops, counted once Redis did not take them
        self._stripped_sending: list[int] = []
        self._lock = threading.Lock()
        self._group = GroupCommit(
            threading.Condition(self._lock), directory, self._collect, commit_interval_s, commit_every
        )
        self._entries: deque[_Slot] = deque()
        self._segments: list[Segment] = []
        self._bytes = 0
        self._next = 1
        self._closing = False
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = segments.try_lock(directory / "lock")
        if lock_fd is None:
            raise JournalInUse(f"journal {directory} is open elsewhere (one publisher per directory)")
        self._lock_fd, self._head_fd = lock_fd, -1
        try:
            self._head_fd = os.open(directory / "head", os.O_RDWR | os.O_CREAT, 0o644)
            with self._lock:
                self._recover()
                self._import_file_pairs()
                _delete(self._enforce_bounds())
                self._fsync_all()  # what a killed predecessor wrote may still sit in the page cache only
        except BaseException:
            self._close_files()
            raise
        self._group.start(synced_through=self._next - 1)
        if self._entries:
            log.info("journal %s holds %d alerts from an earlier run", directory, len(self._entries))

    # --- state -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Alert and snapshot bytes held (what `max_bytes` bounds)."""
        with self._lock:
            return self._bytes

    @property
    def last_seq(self) -> int:
        """The seq of the newest append (0 before the first one)."""
        with self._lock:
            return self._next - 1

    @property
    def synced_through(self) -> int:
        """Every entry up to this seq was fsynced."""
        with self._lock:
            return self._group.synced_through

    @property
    def commits(self) -> int:
        """Group commits (fsyncs of the log) done."""
        return self._group.commits

    @property
    def sync_errors(self) -> int:
        return self._group.errors

    def held_after(self, seq: int) -> tuple[int, int]:
        """(how many held entries have a seq above `seq`, `last_seq`), read together."""
        with self._lock:
            count = 0
            for slot in reversed(self._entries):
                if slot.seq <= seq:
                    break
                count += 1
            return count, self._next - 1

    # --- writing ---------------------------------------------------------------------------------------
    def append(self, alert_json: bytes, snapshot: bytes | None = None) -> int:
        """Write one entry, in the kernel when this returns and on disk by the next commit; its seq.
        Raises OSError when the disk refuses (nothing of the entry stays), ValueError once closed."""
        snapshot = snapshot or b""
        if not alert_json or len(alert_json) > MAX_FIELD or len(snapshot) > MAX_FIELD:
            raise ValueError(f"an alert of 1 to {MAX_FIELD} bytes, a snapshot of at most {MAX_FIELD}")
        with self._lock:
            if self._closing:
                raise ValueError(f"journal {self.directory} is closed")
            seq = self._append(alert_json, snapshot)
            spent = self._enforce_bounds()
        _delete(spent)  # as in `ack`: not under the lock
        return seq

    def _append(self, alert_json: bytes, snapshot: bytes) -> int:
        seg = self._segments[-1]
        if seg.size >= self.segment_bytes:
            seg = self._roll()
        seq, offset = self._next, seg.size
        seg.dirty = True
        try:
            seg.size += segments.write_all(seg.fd, segments.encode(seq, alert_json, snapshot))
        except OSError:
            try:
                os.ftruncate(seg.fd, offset)  # never leave half a record in the middle of the log
            except OSError:
                seg.size = self.segment_bytes  # it could not be cut: the next append starts a new segment
            raise
        self._next += 1
        seg.last_seq = seq
        self._entries.append(_Slot(seq, seg, offset, len(alert_json), len(snapshot)))
        self._bytes += len(alert_json) + len(snapshot)
        self._group.appended()
        return seq

    def _roll(self) -> Segment:
        number = self._segments[-1].number + 1 if self._segments else 1
        seg = Segment.create(self.directory / f"{number:08d}.seg")
        self._segments.append(seg)
        self._group.changed()
        return seg

    # --- reading and acknowledging ---------------------------------------------------------------------
    def peek(self, limit: int, max_bytes: int | None = None) -> list[JournalEntry]:
        """The oldest entries, oldest first: at most `limit`, and beyond the first at most `max_bytes` of
        payload. They stay until `ack`. The reads run outside the lock, so appends go on meanwhile."""
        with self._lock:
            if self._closing:
                return []
            picked: list[tuple[int, Segment, int, int, int]] = []
            total = 0
            for slot in islice(self._entries, limit):
                size = slot.alert_len + slot.snap_len
                if picked and max_bytes is not None and total + size > max_bytes:
                    break
                picked.append((slot.seq, slot.segment, slot.offset, slot.alert_len, slot.snap_len))
                total += size
            self._settle(0)  # a sender that peeks again is done with the last batch
            self._sending_through = picked[-1][0] if picked else 0
            # a duplicate descriptor goes on reading the file it pointed at, even if a compaction replaces it
            fds: dict[int, int] = {}
            for _, seg, _, _, _ in picked:
                if id(seg) not in fds:
                    fds[id(seg)] = os.dup(seg.fd)
        try:
            entries = []
            for seq, seg, offset, alert_len, snap_len in picked:
                alert, snapshot = segments.read(fds[id(seg)], offset, alert_len, snap_len)
                entries.append(JournalEntry(seq, alert, snapshot or None))
            return entries
        finally:
            for fd in fds.values():
                os.close(fd)

    def ack(self, through_seq: int) -> None:
        """Forget every entry up to and including `through_seq` (Redis has them)."""
        with self._lock:
            if self._closing:
                return
            self._settle(through_seq)
            if not self._entries or self._entries[0].seq > through_seq:
                return
            while self._entries and self._entries[0].seq <= through_seq:
                slot = self._entries.popleft()
                self._bytes -= slot.alert_len + slot.snap_len
            self._persist_head()
            spent = self._take_spent_segments()
        _delete(spent)  # unlinking a large file takes a while: not while publish() waits for the lock

    def release(self) -> None:
        """The sender gives back what `peek` handed out without an `ack` (Redis did not answer): what the
        bounds dropped from it meanwhile is counted as dropped now."""
        with self._lock:
            self._settle(0)

    def _settle(self, through_seq: int) -> None:
        """Count the in-flight drops Redis did not take (seq above `through_seq`); forget the batch."""
        self._count_dropped_alerts(sum(1 for seq in self._dropped_sending if seq > through_seq))
        self.dropped_snapshots += sum(1 for seq in self._stripped_sending if seq > through_seq)
        self._dropped_sending.clear()
        self._stripped_sending.clear()
        self._sending_through = 0

    def _persist_head(self) -> None:
        segments.write_head(self._head_fd, self._entries[0].seq if self._entries else self._next)

    def _take_spent_segments(self) -> list[Segment]:
        """Take the segments whose every record is acknowledged or dropped off the log (for `_delete`)."""
        first_held = self._entries[0].seq if self._entries else self._next
        spent = []
        while len(self._segments) > 1 and self._segments[0].last_seq < first_held:
            spent.append(self._segments.pop(0))
            self._group.changed()
        return spent

    # --- bounds ----------------------------------------------------------------------------------------
    def _enforce_bounds(self) -> list[Segment]:
        """Drop what the bounds do not hold (see the module's docstring); the segments left without a held
        record, taken off the log for `_delete`."""
        dropped = False
        while len(self._entries) > self.max_entries:
            self._drop_oldest_alert()
            dropped = True
        touched: dict[int, Segment] = {}
        if self._bytes > self.max_bytes:
            target = self.max_bytes - self.slack
            for slot in self._entries:
                if self._bytes <= target:
                    break
                if slot.snap_len:
                    self._bytes -= slot.snap_len
                    slot.snap_len = 0
                    if slot.seq <= self._sending_through:
                        self._stripped_sending.append(slot.seq)  # the sender read it: it may still arrive
                    else:
                        self.dropped_snapshots += 1
                    touched[id(slot.segment)] = slot.segment
            while self._bytes > self.max_bytes and self._entries:
                self._drop_oldest_alert()
                dropped = True
        spent: list[Segment] = []
        if dropped:
            self._persist_head()  # before the segments go: a stale head would bring dropped records back
            spent = self._take_spent_segments()
        self._compact([seg for seg in touched.values() if seg in self._segments])
        return spent

    def _drop_oldest_alert(self) -> None:
        slot = self._entries.popleft()
        self._bytes -= slot.alert_len + slot.snap_len
        if slot.seq <= self._sending_through:
            self._dropped_sending.append(slot.seq)  # in flight: dropped only if Redis does not take it
        else:
            self._count_dropped_alerts(1)

    def _count_dropped_alerts(self, count: int) -> None:
        before = self.dropped_alerts
        self.dropped_alerts += count
        if count and (before == 0 or before // 100 != self.dropped_alerts // 100):
            log.warning("journal %s full: %d alerts dropped so far", self.directory, self.dropped_alerts)

    def _compact(self, targets: list[Segment]) -> None:
        """Rewrite `targets` with the entries they still hold, without the snapshots dropped from them."""
        if not targets:
            return
        if self._segments[-1] in targets:
            self._roll()  # the active segment is rewritten once closed
        for seg in targets:
            slots = [slot for slot in self._entries if slot.segment is seg]
            try:
                offsets = segments.rewrite(seg, [(s.seq, s.offset, s.alert_len, s.snap_len) for s in slots])
            except OSError as exc:  # the entry was appended all the same; only the space stays taken
                log.error("journal %s: could not compact %s (%s)", self.directory, seg.path, exc)
                continue
            for slot, offset in zip(slots, offsets, strict=True):
                slot.offset = offset
        self._group.changed()

    # --- opening ---------------------------------------------------------------------------------------
    def _recover(self) -> None:
        head = segments.read_head(self._head_fd)
        last = 0
        for seg, records in segments.open_all(self.directory):
            self._segments.append(seg)
            for seq, offset, alert_len, snap_len in records:
                if seq >= head:
                    self._entries.append(_Slot(seq, seg, offset, alert_len, snap_len))
                    self._bytes += alert_len + snap_len
            last = max(last, seg.last_seq)
        self._next = max(last, head - 1) + 1
        _delete(self._take_spent_segments())
        if not self._segments:
            self._roll()

    def _import_file_pairs(self) -> None:
        """Move the entries of the earlier file-per-alert journal (`<seq>.json` + `<seq>.jpg`) into the log.
        A crash halfway imports some twice on the next start: sent twice, stored once (the sent markers)."""
        pairs = segments.file_pairs(self.directory)
        for alert_json, snapshot in pairs:
            self._append(alert_json, snapshot)
        if pairs:
            self._fsync_all()
            log.info(
                "journal %s: moved in %d alerts of the file-per-alert format", self.directory, len(pairs)
            )
        segments.remove_file_pairs(self.directory)

    # --- group commit ----------------------------------------------------------------------------------
    def _fsync_all(self) -> None:
        for seg in self._segments:
            os.fsync(seg.fd)
            seg.dirty = False
        segments.fsync_dir(self.directory)

    def _collect(self) -> tuple[list[int], int]:
        # duplicates: the fsyncs run outside the lock, and a segment may be closed meanwhile
        fds = [os.dup(seg.fd) for seg in self._segments if seg.dirty]
        for seg in self._segments:
            seg.dirty = False
        return fds, self._next - 1

    def sync(self, timeout: float = 30.0) -> bool:
        """Commit now and wait for it; False when that commit failed or did not end within `timeout`."""
        return self._group.sync(self.last_seq, timeout)

    # --- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Commit what was written, close the files and release the directory."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._group.close()
        with self._lock:
            self._close_files()

    def _close_files(self) -> None:
        for seg in self._segments:
            os.close(seg.fd)
        self._segments.clear()
        if self._head_fd >= 0:
            os.close(self._head_fd)
        os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> AlertJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _delete(spent: list[Segment]) -> None:
    for seg in spent:
        os.close(seg.fd)
        seg.path.unlink(missing_ok=True)
