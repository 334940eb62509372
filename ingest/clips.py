"""`ClipRecorder`: cuts event clips from the cameras' pre-roll rings and hands them to the clip spool.

    alerts ──► recorder.alert_sink(inner).publish ──► inner.publish(alert + ClipNote)
                    │ starts or extends a recording (a `Tap` of the camera's `PacketRing`)
                    ▼
    reader threads fill the taps; a tap closes at its end time (or a reconnect, a stall, a bound)
                    ▼
    the recorder's thread: remux (no decode) ──► spool.add(staged MP4, ClipMeta) | spool.add_failure

One recording per key `camera|rule|zone` (what the center folds into one open incident): another alert of
that key while it records extends its end to the alert's time + `postroll_s`, up to `clip_max_s` from the
clip's start, and joins its `alert_ids`. Alert times are stream times: the alert's `captured_at` is the
sampled frame's, which the reader marked in the ring with the frame's pts, so the offset of an alert in the
clip is where that frame is. Remuxing happens on the recorder's own thread, never on a reader's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from contracts import NO_CLIP_KINDS, Alert, AlertSink, ClipFailure, ClipMeta, ClipNote, ClipRequest, ClipState
from contracts.clips import MAX_CLIP_ALERTS
from ingest.config import ClipConfig
from ingest.metrics import ClipCounters
from ingest.remux import RemuxError, RemuxResult, remux
from ingest.ring import PacketRing, RingBudget, Tap

log = logging.getLogger(__name__)

MAX_RECORDINGS = 256  # recordings open or waiting for the remux, per worker
STALL_GRACE_S = 30.0  # a recording whose video stops coming is cut this long after its planned end
TICK_S = 0.5


class ClipSpoolLike(Protocol):
    """Where finished clips go (ingest.spool.ClipSpool implements it)."""

    def staging_path(self) -> Path:
        """A fresh temporary file path on the spool's filesystem to write an MP4 into."""
        ...

    def add(self, staged: Path, meta: ClipMeta) -> str:
        """Moves the staged MP4 into the spool (hashed, fsynced, renamed); its SHA-256 hex. Idempotent."""
        ...

    def add_failure(self, failure: ClipFailure) -> None:
        """Spools a report of a clip that will not come."""
        ...


@dataclass(eq=False)
class _Recording:
    camera_id: str
    key: str | None  # camera|rule|zone; None for an operator's "save the last N seconds"
    ring: PacketRing
    trigger_wall: datetime  # wall-clock time of the first alert (or of the request)
    trigger_t: float  # its stream time
    alert_ids: list[str] = field(default_factory=list)
    alert_times: list[float] = field(default_factory=list)  # stream seconds, one per alert id
    tap: Tap | None = None
    cap_t: float = 0.0  # the end may not pass this (clip_max_s from the start)
    deadline: float = 0.0  # monotonic: cut then if the stream stopped sending
    short_reason: str | None = None


class _ClipAlertSink:
    """Wraps an `AlertSink`: each alert gets its `ClipNote` (and starts or extends a recording)."""

    def __init__(self, recorder: ClipRecorder, inner: AlertSink) -> None:
        self.recorder = recorder
        self.inner = inner

    def publish(self, alert: Alert, snapshot: bytes | None = None) -> None:
        note = self.recorder.note_for(alert)
        if note is not None:
            alert = alert.model_copy(update={"clip": note})
        self.inner.publish(alert, snapshot)


class ClipRecorder:
    """Records clips for the alerts of the cameras whose rings are attached; see the module docstring."""

    def __init__(
        self,
        config: ClipConfig,
        spool: ClipSpoolLike,
        worker_id: str,
        *,
        max_recordings: int = MAX_RECORDINGS,
    ) -> None:
        self.config = config
        self.spool = spool
        self.worker_id = worker_id
        self.max_recordings = max_recordings
        self._lock = threading.Lock()
        self._rings: dict[str, PacketRing] = {}
        self._active: dict[str, _Recording] = {}  # key -> the open recording its alerts join
        self._open: set[_Recording] = set()  # taps not closed yet
        self._pending = 0  # recordings open or waiting for the remux
        # what recordings hold, all cameras together (packets shared with the rings count too)
        self._memory = RingBudget(config.ring_budget_bytes)
        self._done: queue.SimpleQueue[_Recording | None] = queue.SimpleQueue()
        self._closing = False
        self._clips = 0
        self._seconds = 0.0
        self._cut_cpu_s = 0.0
        self._failures = 0
        self._unavailable = 0
        self._thread = threading.Thread(target=self._run, name=f"clip-recorder-{worker_id}", daemon=True)
        self._thread.start()

    # ----- wiring ----------------------------------------------------------------------------------------
    def alert_sink(self, inner: AlertSink) -> AlertSink:
        return _ClipAlertSink(self, inner)

    def attach(self, camera_id: str, ring: PacketRing) -> None:
        with self._lock:
            self._rings[camera_id] = ring

    def detach(self, camera_id: str, reason: str = "the camera stopped on this worker") -> None:
        """The camera stops on this worker: its recordings are cut with what they have."""
        with self._lock:
            ring = self._rings.pop(camera_id, None)
            taps = [r.tap for r in self._open if r.ring is ring and r.tap is not None]
        if ring is not None:
            for tap in taps:
                ring.cut(tap, reason)

    def close(self, timeout: float = 10.0) -> None:
        """Graceful stop: cut open recordings with what they have, write them, stop the thread."""
        with self._lock:
            self._closing = True
            open_ = [(r.ring, r.tap) for r in self._open if r.tap is not None]
        for ring, tap in open_:
            ring.cut(tap, "the worker stopped")
        self._done.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("clip recorder %s: clips still being written at stop", self.worker_id)

    def counters(self) -> ClipCounters:
        with self._lock:
            return ClipCounters(
                clips=self._clips,
                clip_seconds=self._seconds,
                cut_cpu_s=self._cut_cpu_s,
                failures=self._failures,
                unavailable=self._unavailable,
                recording=len(self._open),
                recording_bytes=self._memory.used,
            )

    # ----- alerts ----------------------------------------------------------------------------------------
    def note_for(self, alert: Alert) -> ClipNote | None:
        """The alert's `ClipNote` (None for kinds that never get a clip); starts or extends a recording."""
        if alert.kind in NO_CLIP_KINDS:
            return None
        if not self.config.enabled:
            return self._unavailable_note("clips are off on this worker")
        with self._lock:
            ring = self._rings.get(alert.camera_id)
            if self._closing:
                return self._unavailable_note("the worker is stopping")
            if ring is None:
                return self._unavailable_note("this worker does not read the camera")
            if not ring.connected:
                return self._unavailable_note("camera not connected")
            t = ring.stream_time(alert.captured_at.timestamp())
            if t is None:
                return self._unavailable_note(ring.note or "no video held yet (waiting for a keyframe)")
            key = f"{alert.camera_id}|{alert.rule or ''}|{alert.zone or ''}"
            rec = self._active.get(key)
            if rec is not None and rec.ring is ring and self._join(rec, alert.id, t):
                assert rec.tap is not None
                return ClipNote(state=ClipState.pending, preroll_s=max(0.0, t - rec.tap.start_t))
            return self._start(ring, key, alert, t)

    def _unavailable_note(self, reason: str) -> ClipNote:
        self._unavailable += 1  # an int's += under the GIL: a lost count at worst
        return ClipNote(state=ClipState.unavailable, reason=reason[:300])

    def _join(self, rec: _Recording, alert_id: str, t: float) -> bool:
        tap = rec.tap
        if tap is None or len(rec.alert_ids) >= MAX_CLIP_ALERTS or not tap.start_t <= t <= rec.cap_t:
            return False
        end = min(max(tap.end_t, t + self.config.postroll_s), rec.cap_t)
        if not rec.ring.extend(tap, end):
            return False  # it closed meanwhile: a new recording
        rec.alert_ids.append(alert_id)
        rec.alert_times.append(t)
        rec.deadline = self._deadline(rec.ring, end)
        return True

    def _start(self, ring: PacketRing, key: str, alert: Alert, t: float) -> ClipNote:
        if self._pending >= self.max_recordings:
            return self._unavailable_note("too many clips being recorded on this worker")
        cfg = self.config
        rec = _Recording(alert.camera_id, key, ring, alert.captured_at, t, [alert.id], [t])
        from_t = t - cfg.preroll_s
        tap = ring.tap(
            from_t, t + cfg.postroll_s, self._max_bytes(), lambda _tap: self._done.put(rec), self._memory
        )
        if tap is None:
            return self._unavailable_note(ring.note or "no video held yet (waiting for a keyframe)")
        rec.tap = tap
        rec.cap_t = max(tap.start_t + cfg.clip_max_s, tap.end_t)
        rec.deadline = self._deadline(ring, tap.end_t)
        rec.short_reason = _short_start(ring, tap.start_t, from_t, t)
        self._pending += 1
        self._active[key] = rec
        if not tap.closed:
            self._open.add(rec)
        return ClipNote(state=ClipState.pending, preroll_s=max(0.0, t - tap.start_t))

    def _max_bytes(self) -> int:
        # the ring's bound, scaled to the longest clip: the same bitrate bound
        cfg = self.config
        return int(cfg.ring_max_bytes * max(1.0, cfg.clip_max_s / cfg.preroll_s))

    @staticmethod
    def _deadline(ring: PacketRing, end_t: float) -> float:
        newest = ring.newest_t()
        ahead = end_t - newest if newest is not None else end_t
        return time.monotonic() + max(0.0, ahead) + STALL_GRACE_S

    # ----- on demand -------------------------------------------------------------------------------------
    def save_last(self, request: ClipRequest) -> bool:
        """An operator's "save the last N seconds" (N <= preroll_s), no post-roll; its clip's alert id is the
        request id, marked at the clip's end (the press). False: this worker does not read the camera."""
        with self._lock:
            ring = self._rings.get(request.camera_id)
            if ring is None:
                return False
            reason = self._save_last(ring, request)
        if reason is not None:
            self._fail(
                ClipFailure(
                    camera_id=request.camera_id,
                    alert_ids=(request.request_id,),
                    reason=reason,
                    worker_id=self.worker_id,
                )
            )
        return True

    def _save_last(self, ring: PacketRing, request: ClipRequest) -> str | None:
        if self._closing:
            return "the worker is stopping"
        if self._pending >= self.max_recordings:
            return "too many clips being recorded on this worker"
        newest = ring.newest_t()
        if newest is None or not ring.connected:
            return "camera not connected" if not ring.connected else "no video held yet"
        seconds = min(request.seconds, self.config.preroll_s)
        rec = _Recording(
            request.camera_id, None, ring, datetime.now(UTC), newest, [request.request_id], [newest]
        )
        tap = ring.tap(
            newest - seconds, None, self._max_bytes(), lambda _tap: self._done.put(rec), self._memory
        )
        if tap is None:
            return "no video held yet"
        rec.tap = tap
        rec.short_reason = _short_start(ring, tap.start_t, newest - seconds, newest)
        if request.seconds > self.config.preroll_s:
            rec.short_reason = (
                f"asked {request.seconds:g} s; the ring keeps at most {self.config.preroll_s:g} s"
            )
        self._pending += 1
        return None

    # ----- the recorder's thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                rec = self._done.get(timeout=TICK_S)
            except queue.Empty:
                rec = None
            else:
                if rec is None:
                    return
                try:
                    self._finish(rec)
                except Exception:  # one clip's bug must not end the recorder
                    log.exception("camera %s: writing a clip failed", rec.camera_id)
            self._check_deadlines()

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(r.ring, r.tap) for r in self._open if r.deadline < now and r.tap is not None]
        for ring, tap in late:
            ring.cut(tap, "no video came for the post-roll (the stream stalled)")

    def _finish(self, rec: _Recording) -> None:
        with self._lock:
            self._open.discard(rec)
            if rec.key is not None and self._active.get(rec.key) is rec:
                del self._active[rec.key]
            ids, times = tuple(rec.alert_ids), tuple(rec.alert_times)
            self._pending -= 1
        tap = rec.tap
        assert tap is not None and tap.closed
        short = "; ".join(r for r in (rec.short_reason, tap.reason) if r) or None
        staged: Path | None = None
        try:
            staged = self.spool.staging_path()
            result = remux(staged, tap.params, tap.packets)
            meta = self._meta(rec, tap, ids, times, result, short)
            digest = self.spool.add(staged, meta)
        except (RemuxError, OSError, ValueError) as exc:  # ValueError: pydantic's, or the spool's refusal
            if staged is not None:
                staged.unlink(missing_ok=True)
            reason = str(exc) if isinstance(exc, RemuxError) else f"the clip could not be spooled: {exc}"
            self._fail(
                ClipFailure(
                    camera_id=rec.camera_id,
                    alert_ids=ids,
                    reason=reason[:300] or "remux failed",
                    worker_id=self.worker_id,
                )
            )
            return
        finally:
            tap.release_memory()
            tap.packets = []  # written (or not): the memory goes back either way
        with self._lock:
            self._clips += 1
            self._seconds += meta.duration_s
            self._cut_cpu_s += result.cpu_ms / 1000
        log.info(
            "camera %s: clip of %.1f s (%d alerts, %d KB, remux %.1f ms CPU) spooled as %s%s",
            rec.camera_id,
            meta.duration_s,
            len(ids),
            meta.bytes // 1024,
            result.cpu_ms,
            digest[:12],
            f" (short: {short})" if short else "",
        )

    def _meta(
        self,
        rec: _Recording,
        tap: Tap,
        ids: tuple[str, ...],
        times: tuple[float, ...],
        result: RemuxResult,
        short: str | None,
    ) -> ClipMeta:
        duration = min(max(result.duration_s, 1e-3), 3600.0)
        offsets: tuple[float, ...]
        if rec.key is None:
            offsets = (duration,)  # on demand: the press is the end
        else:
            offsets = tuple(min(max(0.0, t - tap.start_t), duration) for t in times)
        params = tap.params
        return ClipMeta(
            camera_id=rec.camera_id,
            alert_ids=ids,
            alert_offsets_s=offsets,
            started_at=rec.trigger_wall - timedelta(seconds=rec.trigger_t - tap.start_t),
            duration_s=duration,
            bytes=result.nbytes,
            codec=params.codec,
            width=params.width or None,
            height=params.height or None,
            worker_id=self.worker_id,
            short_reason=short[:300] if short else None,
        )

    def _fail(self, failure: ClipFailure) -> None:
        with self._lock:
            self._failures += 1
        log.warning("camera %s: no clip for %s: %s", failure.camera_id, failure.alert_ids[0], failure.reason)
        try:
            self.spool.add_failure(failure)
        except (OSError, ValueError) as exc:
            log.warning("camera %s: the clip failure could not be spooled: %s", failure.camera_id, exc)


def _short_start(ring: PacketRing, start_t: float, from_t: float, t: float) -> str | None:
    """Why a clip starts later than asked (the ring held less), or None."""
    if start_t <= from_t + 1e-3:
        return None
    if t < start_t:
        return "the alert is older than the video the ring holds"
    note = ring.note
    held = f"the ring held {t - start_t:.1f} s before it"
    return f"{held}: {note}" if note else f"{held} (the stream connected recently)"
