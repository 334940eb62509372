"""`DetectionPipeline`: the `FrameSink` ingest hands sampled frames to.

    submit(frame) -> LatestFrameBuffer (the one slot per camera: latest wins, stale frames dropped, both
                     drops counted per camera for `dropped`)
    detector thread: take up to B frames -> motion gate per camera -> ONE detector call for the frames
    that need it -> tracker per camera -> rules per camera -> Alert + snapshot -> AlertSink

Frames a gate holds back still reach the rules (tamper reads every frame; zone rules see the last
detections, which stand while nothing moves), so rules keep their timing without an inference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from contracts.camera import Camera
from contracts.frames import AlertSink, Frame
from detection.alerts import build_alert, render_snapshot
from detection.buffer import LatestFrameBuffer
from detection.config import DetectionConfig
from detection.detector import Detector, UltralyticsDetector
from detection.motion import MotionGate
from detection.rules import Observation, Rule, build_rule
from detection.tracking import CameraTracker
from detection.types import Detections

log = logging.getLogger(__name__)


@dataclass
class PipelineCounts:
    submitted: int = 0
    unknown_camera: int = 0  # frames of cameras this worker does not own (dropped)
    processed: int = 0
    inferred: int = 0  # frames that went to the detector
    gated: int = 0  # frames the motion gate kept from the detector
    detector_calls: int = 0
    detector_seconds: float = 0.0
    alerts: int = 0
    errors: int = 0
    gate_reasons: dict[str, int] = field(default_factory=dict)


class _CameraState:
    def __init__(self, camera: Camera, config: DetectionConfig) -> None:
        self.camera = camera
        self.rules: list[Rule] = [build_rule(rc) for rc in camera.rules]
        self.rule_configs: dict[str, Any] = {rc.id: rc for rc in camera.rules}
        self.gate = MotionGate(config.motion, config.motion_masks.get(camera.id, ()))
        self.tracker = (
            CameraTracker(config.tracker, sample_interval_s=1.0 / camera.sample_fps)
            if config.tracker.enabled
            else None
        )
        self.last: Detections = Detections.empty()
        self.lock = threading.Lock()  # one batch at a time touches a camera's state


class DetectionPipeline:
    """Implements `contracts.FrameSink`. `start()` loads the model and starts the detector thread."""

    def __init__(
        self, config: DetectionConfig, alerts: AlertSink, *, detector: Detector | None = None
    ) -> None:
        self.config = config
        self._alerts = alerts
        self._detector = detector
        self.buffer = LatestFrameBuffer(config.max_frame_age_s)
        self.counts = PipelineCounts()
        self._cameras: dict[str, _CameraState] = {}
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()  # readers submit from many threads; `+=` is not atomic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- FrameSink -------------------------------------------------------------------------------------
    def submit(self, frame: Frame) -> None:
        known = frame.camera_id in self._cameras
        with self._submit_lock:
            self.counts.submitted += 1
            if not known:
                self.counts.unknown_camera += 1
        if known:
            self.buffer.put(frame)

    def dropped(self, camera_id: str) -> int:
        """Frames of `camera_id` replaced or gone stale in the buffer, each counted once."""
        return self.buffer.dropped(camera_id)

    def cameras_changed(self, cameras: Mapping[str, Camera]) -> None:
        with self._lock:
            current = dict(self._cameras)
            states: dict[str, _CameraState] = {}
            for cid, camera in cameras.items():
                if not camera.enabled:
                    continue
                old = current.get(cid)
                states[cid] = (
                    old if old is not None and old.camera == camera else _CameraState(camera, self.config)
                )
            gone = set(current) - set(states)
            self._cameras = states
        self.buffer.discard(gone)
        log.info("detection watches %d cameras (%d removed)", len(states), len(gone))

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        if self._detector is None:
            cfg = self.config
            self._detector = UltralyticsDetector(
                cfg.model, imgsz=cfg.imgsz, device=cfg.device, conf=cfg.conf, classes=cfg.classes
            )
        self._stop.clear()
        self.buffer.reopen()
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                log.error("detector thread did not stop within 60 s")
            self._thread = None

    @property
    def idle(self) -> bool:
        """No frame is waiting (a batch may still be in flight)."""
        return len(self.buffer) == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            frames = self.buffer.take(self.config.batch_size, timeout=0.5)
            if not frames:
                continue
            try:
                self.process(frames)
            except Exception:  # the thread must outlive one bad batch; the log says which cameras
                self.counts.errors += 1
                log.exception("detection failed on a batch of cameras %s", [f.camera_id for f in frames])

    # --- one batch -------------------------------------------------------------------------------------
    def process(self, frames: list[Frame]) -> int:
        """Gate, detect (one call), track and run rules on frames of distinct cameras; returns alerts sent."""
        detector = self._detector
        if detector is None:
            raise RuntimeError("DetectionPipeline.start() loads the detector first")
        work = []
        for frame in frames:
            state = self._cameras.get(frame.camera_id)
            if state is None:
                continue
            t = frame.captured_at.timestamp()
            alive = state.tracker.alive if state.tracker is not None else len(state.last) > 0
            decision = state.gate.decide(frame, t, alive)  # luma only: no BGR yet
            reasons = self.counts.gate_reasons
            reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
            work.append((frame, state, decision, t, alive))
        to_infer = [w for w in work if w[2].infer]
        results: list[Detections] = []
        if to_infer:
            started = time.perf_counter()
            results = detector.detect([w[0].image for w in to_infer])
            self.counts.detector_seconds += time.perf_counter() - started
            self.counts.detector_calls += 1
            self.counts.inferred += len(to_infer)
        self.counts.gated += len(work) - len(to_infer)
        by_frame = {id(w[0]): r for w, r in zip(to_infer, results, strict=True)}
        sent = 0
        for frame, state, _decision, t, alive in work:
            with state.lock:
                raw = by_frame.get(id(frame))
                if raw is not None:
                    det = (
                        state.tracker.update(raw, (frame.width, frame.height))
                        if state.tracker is not None
                        else raw
                    )
                    state.last = det
                    fresh = True
                else:
                    det = state.last if alive else Detections.empty(detector.names)
                    fresh = False
                obs = Observation(t=t, detections=det, stats=_decision.stats, fresh=fresh)
                for rule in state.rules:
                    try:
                        for event in rule.update(obs):
                            sent += self._emit(event, frame, state, det, detector.name)
                    except Exception:  # one rule's bug must not silence the camera's other rules
                        self.counts.errors += 1
                        log.exception("rule %s failed camera_id=%s", rule.id, frame.camera_id)
            self.counts.processed += 1
        return sent

    def _emit(self, event: Any, frame: Frame, state: _CameraState, seen: Detections, model: str) -> int:
        alert = build_alert(event, frame, state.camera, worker_id=self.config.worker_id, model=model)
        snapshot = render_snapshot(
            event,
            frame.image,
            state.rule_configs.get(event.rule_id),
            seen,
            max_bytes=self.config.snapshot_max_bytes,
            max_width=self.config.snapshot_width,
        )
        self._alerts.publish(alert, snapshot)
        self.counts.alerts += 1
        log.info(
            "alert %s %s camera_id=%s rule=%s zone=%s objects=%d",
            alert.id,
            alert.kind,
            alert.camera_id,
            alert.rule,
            alert.zone,
            len(alert.objects),
        )
        return 1

    def stats(self) -> PipelineCounts:
        return replace(self.counts, gate_reasons=dict(self.counts.gate_reasons))
