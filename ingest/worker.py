"""`IngestWorker`: reads many cameras in one process, one reader thread each, and supervises them.

IngestWorker
  ├── StreamReader thread per owned camera ──sample──► FrameSink.submit (on the reader's thread; it never
  │        │                                            blocks: the sink keeps one slot per camera and
  │        │                                            counts its drops, read back with `dropped`)
  │        ├─ failure / frame events ──► CameraMonitor (state, alerts) ──► AlertSink.publish
  │        └─ every video packet ──► PacketRing (clips on) ◄── ClipRecorder (attached per camera)
  └── supervisor thread: camera changes, sharding (heartbeat, live set), stall watchdog,
                          offline escalation, health records in Redis

The worker serves no metrics itself: it is a `metrics.WorkerStatus`, and `ingest.run.serve` builds the
metrics server around it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import redis

from contracts import (
    AlertSink,
    Camera,
    CameraConfigError,
    CameraState,
    Frame,
    FrameSink,
    StreamHealth,
)
from ingest.cameras import CameraSource
from ingest.clips import ClipRecorder
from ingest.config import IngestConfig
from ingest.health import HealthWriter, stream_health
from ingest.metrics import ClipCounters, StreamCounters
from ingest.monitor import CameraMonitor, Transition, build_alert
from ingest.reader import StreamReader, cpu_count
from ingest.ring import PacketRing, RingBudget
from ingest.sampling import SamplingMode
from ingest.sharding import WorkerRegistry, rendezvous_owner

log = logging.getLogger(__name__)

TICK_S = 0.25


@dataclass
class _Stream:
    camera: Camera
    reader: StreamReader
    thread: threading.Thread
    monitor: CameraMonitor
    ring: PacketRing | None = None
    last_frame_wall: datetime | None = None
    stalled: bool = False
    started_at: float = field(default_factory=time.monotonic)


class IngestWorker:
    def __init__(
        self,
        config: IngestConfig,
        cameras: CameraSource,
        sink: FrameSink,
        alerts: AlertSink,
        redis_client: redis.Redis | None = None,
        *,
        clips: ClipRecorder | None = None,
    ) -> None:
        if config.sharded and redis_client is None:
            raise ValueError("a sharded ingest worker needs a Redis client")
        self.config = config
        self.clips = clips
        # rings only when someone cuts clips from them: a ring nobody reads is memory for nothing
        self._budget = (
            RingBudget(config.clips.ring_budget_bytes) if clips is not None and config.clips.enabled else None
        )
        self.cameras = cameras
        self.sink = sink
        self.alerts = alerts
        self.redis = redis_client
        self._lock = threading.RLock()
        self._streams: dict[str, _Stream] = {}
        self._retiring: list[threading.Thread] = []
        self._defined: dict[str, Camera] = {}
        self._owned_ids: frozenset[str] = frozenset()
        self._live_workers: set[str] = {config.worker_id}
        self._open_gate = threading.BoundedSemaphore(config.max_concurrent_reconnects)
        self._health = HealthWriter(redis_client, config.health_ttl_s) if redis_client is not None else None
        self._registry = (
            WorkerRegistry(redis_client, config.worker_id, config.worker_ttl_s)
            if config.sharded and redis_client is not None
            else None
        )
        self._stop = threading.Event()
        self._leaving = False
        self._supervisor: threading.Thread | None = None
        self.reconnects_total = 0

    @property
    def worker_id(self) -> str:
        return self.config.worker_id

    # ----- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Load cameras, start a reader per owned camera and the supervisor; returns at once."""
        if self._supervisor is not None:
            raise RuntimeError("worker already started")
        self._defined = self.cameras.load()  # a bad camera file fails the start loudly
        if self._registry is not None:
            try:
                self._registry.heartbeat(())
                self._live_workers = self._registry.live_workers()
            except redis.RedisError as exc:
                log.warning("worker %s: cannot register in Redis yet: %s", self.config.worker_id, exc)
        self._apply()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"ingest-supervisor-{self.config.worker_id}", daemon=True
        )
        self._supervisor.start()
        log.info("ingest worker %s started with %d cameras", self.config.worker_id, len(self._streams))

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful: hand cameras over (sharded), stop readers, join every thread."""
        deadline = time.monotonic() + timeout
        if self._registry is not None and self._supervisor is not None and not self._stop.is_set():
            self._leaving = True
            try:
                self._registry.leave()
                drain = self.config.drain_s if self.config.drain_s is not None else self.config.heartbeat_s
                self._stop.wait(min(drain, timeout / 2))  # keep reading while the others take over
            except redis.RedisError as exc:
                log.warning("worker %s: cannot deregister: %s", self.config.worker_id, exc)
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
            threads = [s.thread for s in streams] + self._retiring
            self._retiring = []
        for stream in streams:
            stream.reader.stop()
            self._release_ring(stream, "the worker stopped")
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning(
                "worker %s: %d reader threads still blocked at stop: %s",
                self.config.worker_id,
                len(alive),
                ", ".join(alive[:5]),
            )
        self.cameras.close()
        log.info("ingest worker %s stopped", self.config.worker_id)

    # ----- ownership -------------------------------------------------------------------------------------
    def owned_cameras(self) -> dict[str, Camera]:
        me = self.config.worker_id
        live = sorted(self._live_workers)
        return {
            cid: cam
            for cid, cam in self._defined.items()
            if cam.enabled and (not self.config.sharded or rendezvous_owner(cid, live) == me)
        }

    def _apply(self) -> None:
        """Bring the running readers in line with the cameras this worker owns now."""
        wanted = self.owned_cameras()
        changed = False
        with self._lock:
            for cid in list(self._streams):
                if cid not in wanted or wanted[cid] != self._streams[cid].camera:
                    self._retire(cid, removed=cid not in self._defined)
                    changed = True
            for cid, camera in wanted.items():
                if cid not in self._streams:
                    self._start_stream(camera)
                    changed = True
        if changed or frozenset(wanted) != self._owned_ids:
            self._owned_ids = frozenset(wanted)
            self.sink.cameras_changed(dict(wanted))

    def _start_stream(self, camera: Camera) -> None:
        monitor = CameraMonitor(self.config.offline_after_s, time.monotonic())
        previous = self._health.read(camera.id) if self._health is not None else None
        if previous is not None and previous.state is CameraState.offline:
            monitor.adopt_offline(previous.reason)  # taken over while offline: no second offline alert
        ring = None
        if self._budget is not None and self.clips is not None:
            cfg = self.config.clips
            ring = PacketRing(camera.id, cfg.preroll_s, cfg.ring_max_bytes, self._budget, cfg.alert_lag_s)
            self.clips.attach(camera.id, ring)
        reader = StreamReader(camera, self.config, self, self._open_gate, self._decode_threads, ring=ring)
        thread = threading.Thread(target=reader.run, name=f"ingest-{camera.id}", daemon=True)
        self._streams[camera.id] = _Stream(camera, reader, thread, monitor, ring)
        thread.start()
        log.info("camera %s: reading %s (sample %.2f/s)", camera.id, camera.redacted_url, camera.sample_fps)

    def _retire(self, camera_id: str, removed: bool) -> None:
        stream = self._streams.pop(camera_id)
        stream.reader.stop()
        self._release_ring(stream, "the camera stopped on this worker")
        self._retiring.append(stream.thread)
        if removed and self._health is not None:
            self._health.remove([camera_id])
        log.info("camera %s: stopped reading (%s)", camera_id, "removed" if removed else "moved or changed")

    def _release_ring(self, stream: _Stream, reason: str) -> None:
        """Open recordings of the camera are cut with what they have; the ring gives its memory back."""
        if stream.ring is not None:
            if self.clips is not None:
                self.clips.detach(stream.camera.id, reason)
            stream.ring.release()

    def _decode_threads(self) -> int:
        """Decoder threads for a full-decode stream: the cores shared among the streams that decode all."""
        with self._lock:
            full = sum(1 for s in self._streams.values() if s.reader.mode is SamplingMode.all)
        return max(1, min(4, cpu_count() // max(1, full)))

    # ----- reader events (reader threads) ----------------------------------------------------------------
    def _current(self, reader: StreamReader) -> _Stream | None:
        stream = self._streams.get(reader.camera_id)
        return stream if stream is not None and stream.reader is reader else None

    def on_connected(self, reader: StreamReader) -> None:
        log.info(
            "camera %s: connected (%s %sx%s)", reader.camera_id, reader.codec, reader.width, reader.height
        )

    def on_sample(self, reader: StreamReader, frame: Frame) -> None:
        with self._lock:
            stream = self._current(reader)
            if stream is None:
                return
            stream.stalled = False
            stream.last_frame_wall = frame.captured_at
            transition = stream.monitor.frame(time.monotonic())
        try:
            self.sink.submit(frame)  # never blocks (the FrameSink contract): no queue of our own
        except Exception:  # the sink is another package's code; a bug there must not kill a reader
            log.exception("frame sink failed on camera %s", frame.camera_id)
        if transition is not None:
            self._announce(stream, transition)

    def on_failure(self, reader: StreamReader, reason: str) -> None:
        with self._lock:
            stream = self._current(reader)
            if stream is None:
                return
            transition = stream.monitor.failure(time.monotonic(), reason)
        log.debug("camera %s: %s", reader.camera_id, reason)
        if transition is not None:
            self._announce(stream, transition)

    def on_reconnect(self, reader: StreamReader, delay: float) -> None:
        with self._lock:
            stream = self._current(reader)
            if stream is None:
                return
            stream.monitor.reconnecting()
            self.reconnects_total += 1
        log.debug("camera %s: reconnecting in %.1f s", reader.camera_id, delay)

    def _announce(self, stream: _Stream, transition: Transition) -> None:
        camera = stream.camera
        log.info(
            "camera %s: %s%s",
            camera.id,
            transition.state.value,
            f" ({transition.reason})" if transition.reason else "",
        )
        if transition.alert is None:
            return
        alert = build_alert(
            camera, transition.alert, transition.reason, self.config.worker_id, stream.last_frame_wall
        )
        try:
            self.alerts.publish(alert)
        except Exception:  # the alert sink is another package's code; a bug there must not kill a reader
            log.exception("camera %s: publishing %s failed", camera.id, transition.alert.value)

    # ----- supervisor ------------------------------------------------------------------------------------
    def _supervise(self) -> None:
        next_health = next_heartbeat = next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                changed = self.cameras.wait_changed(TICK_S)
            except redis.RedisError as exc:
                log.warning("camera source: %s", exc)
                changed = False
                self._stop.wait(TICK_S)
            if self._stop.is_set():
                break
            need_apply = False
            if changed:
                need_apply |= self._reload()
            now = time.monotonic()
            if self._registry is not None and not self._leaving:
                if now >= next_poll:
                    next_poll = now + self.config.heartbeat_s / 4
                    need_apply |= self._poll_workers()
                if now >= next_heartbeat:
                    next_heartbeat = now + self.config.heartbeat_s
                    try:
                        self._registry.heartbeat(self._owned_ids)
                    except redis.RedisError as exc:
                        log.warning("worker %s: heartbeat failed: %s", self.config.worker_id, exc)
            if need_apply:
                self._apply()
            self._watch(now)
            if self._health is not None and now >= next_health:
                next_health = now + self.config.health_interval_s
                self._health.write(self.health().values())
            self._reap()

    def _reload(self) -> bool:
        try:
            defined = self.cameras.load()
        except (CameraConfigError, OSError, redis.RedisError) as exc:
            log.error("camera definitions not reloaded, keeping the current ones: %s", exc)
            return False
        if defined == self._defined:
            return False
        self._defined = defined
        return True

    def _poll_workers(self) -> bool:
        assert self._registry is not None
        try:
            live = self._registry.live_workers()
        except redis.RedisError as exc:
            log.warning(
                "worker %s: cannot read live workers, keeping cameras: %s", self.config.worker_id, exc
            )
            return False
        if live == self._live_workers:
            return False
        log.info("worker %s: live workers now %s", self.config.worker_id, ", ".join(sorted(live)))
        self._live_workers = live
        return True

    def _watch(self, now: float) -> None:
        """Stall watchdog and offline escalation."""
        transitions: list[tuple[_Stream, Transition]] = []
        with self._lock:
            for stream in self._streams.values():
                reader = stream.reader
                idle = now - reader.last_packet_at if reader.last_packet_at is not None else 0.0
                if reader.connected and idle > self.config.stall_timeout_s and not stream.stalled:
                    stream.stalled = True
                    t = stream.monitor.failure(now, f"stalled: no packet for {idle:.0f} s")
                    if t is not None:
                        transitions.append((stream, t))
                elif reader.connected and idle < 1.0 and stream.monitor.state is CameraState.online:
                    # packets flow but no sample comes out (undecodable frames, broken timestamps)
                    last = stream.monitor.last_frame_at
                    gop = reader.stats.keyframe_interval or 0.0
                    limit = max(3 * reader.sampler.period, 3 * gop, 2 * self.config.stall_timeout_s)
                    if last is not None and now - last > limit:
                        t = stream.monitor.degrade(f"no samples for {now - last:.0f} s")
                        if t is not None:
                            transitions.append((stream, t))
                t = stream.monitor.tick(now)
                if t is not None:
                    transitions.append((stream, t))
        for stream, t in transitions:
            self._announce(stream, t)

    def _reap(self) -> None:
        with self._lock:
            self._retiring = [t for t in self._retiring if t.is_alive()]

    # ----- health ----------------------------------------------------------------------------------------
    def health(self) -> dict[str, StreamHealth]:
        now = time.monotonic()
        wall = datetime.now(UTC)
        with self._lock:
            streams = list(self._streams.values())
        return {s.camera.id: self._health_of(s, now, wall) for s in streams}

    def _health_of(self, stream: _Stream, now: float, wall: datetime) -> StreamHealth:
        return stream_health(
            stream.camera.id,
            self.config.worker_id,
            stream.reader,
            stream.monitor,
            stream.ring,
            last_frame_at=stream.last_frame_wall,
            dropped=self.sink.dropped(stream.camera.id),
            now=now,
            wall=wall,
        )

    def stream_counters(self) -> dict[str, StreamCounters]:
        """Per-camera counters for metrics: decode CPU seconds, samples, sampling mode."""
        with self._lock:
            streams = list(self._streams.values())
        return {
            s.camera.id: StreamCounters(
                decode_cpu_s=s.reader.decode_cpu_s, samples=s.reader.samples, mode=s.reader.mode.value
            )
            for s in streams
        }

    def clip_counters(self) -> ClipCounters | None:
        """The clip recorder's totals and the rings' budget (None: no clips on this worker)."""
        if self.clips is None:
            return None
        budget = self._budget
        used = {"budget_bytes": budget.limit, "budget_used_bytes": budget.used} if budget is not None else {}
        return replace(self.clips.counters(), **used)
