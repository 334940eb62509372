"""Detection benchmark: naive per-frame `predict` vs GridWatch's path (gating, batching, tracking, rules).

A set of generated cameras (real people cut out of Ultralytics' bus.jpg over street scenes, light noise):
about one camera in five shows activity (a person walks into a watched zone), the rest are still scenes.
Every camera has an intrusion rule and a tamper rule. Both paths see the same decoded samples; CPU time is
process time (all threads), so the numbers are camera-frames handled per CPU-second.

    .venv/bin/python bench/detect.py [--cameras 10] [--seconds 30] [--fps 1] [--model PATH]

Prints a table, then one JSON line:
{"naive_fps": .., "gridwatch_fps": .., "speedup": .., "gated_inference_fraction": .., "ms_per_inference": ..}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contracts.camera import Camera  # noqa: E402
from contracts.frames import Frame  # noqa: E402
from contracts.rules import IntrusionRuleConfig, TamperRuleConfig  # noqa: E402
from detection import DetectionConfig, DetectionPipeline  # noqa: E402
from detection.detector import UltralyticsDetector  # noqa: E402
from gridwatch.demo.clips import Scene, Walker, make_clip  # noqa: E402

ZONE = ((0.55, 0.3), (1.0, 0.3), (1.0, 1.0), (0.55, 1.0))
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def decode(path: Path, fps: float) -> list[np.ndarray]:
    out, next_t = [], 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t + 1e-6 >= next_t:
                out.append(frame.to_ndarray(format="bgr24"))
                next_t += 1 / fps
    return out


def build_cameras(
    n: int, seconds: float, fps: float, workdir: Path
) -> tuple[dict[str, list[np.ndarray]], set[str]]:
    samples: dict[str, list[np.ndarray]] = {}
    active: set[str] = set()
    for i in range(n):
        cid = f"cam-{i:02d}"
        walkers: tuple[Walker, ...] = ()
        if i % 5 == 0:  # one camera in five: a person walks in from the left and into the zone
            start = 2.0 + i % 7
            walkers = (
                Walker(
                    path=(
                        (0.0, 0.05, 0.93),
                        (start, 0.05, 0.93),
                        (start + 8, 0.8, 0.95),
                        (seconds, 0.85, 0.95),
                    )
                ),
            )
            active.add(cid)
        scene = Scene(seconds=seconds, walkers=walkers, seed=100 + i, noise=2.0)
        samples[cid] = decode(make_clip(workdir / f"{cid}.mp4", scene), fps)
    return samples, active


def camera(cid: str) -> Camera:
    rules = (IntrusionRuleConfig(id="zone", zone="east", polygon=ZONE), TamperRuleConfig(id="tamper"))
    return Camera(id=cid, url=f"rtsp://127.0.0.1/{cid}", rules=rules)  # type: ignore[arg-type]


class CountingSink:
    def __init__(self) -> None:
        self.alerts: list = []

    def publish(self, alert, snapshot=None) -> None:  # noqa: ANN001
        self.alerts.append(alert)


class RecordingDetector:
    """Wraps the real detector to count which cameras' frames reach it."""

    def __init__(self, inner: UltralyticsDetector, owner: dict[int, str]) -> None:
        self.inner, self.owner = inner, owner
        self.name, self.names = inner.name, inner.names
        self.per_camera: dict[str, int] = {}
        self.calls = 0

    def detect(self, images):  # noqa: ANN001
        self.calls += 1
        for img in images:
            cid = self.owner[id(img)]
            self.per_camera[cid] = self.per_camera.get(cid, 0) + 1
        return self.inner.detect(images)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--model", type=Path, default=REPO.parent / "shared" / "models" / "yolov8n_fp32.onnx")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        samples, active = build_cameras(args.cameras, args.seconds, args.fps, Path(tmp))
    steps = min(len(v) for v in samples.values())
    total = steps * len(samples)
    detector = UltralyticsDetector(args.model, imgsz=640)
    detector.detect([next(iter(samples.values()))[0]])  # warm-up, outside both timings

    # (a) naive: one predict call on every sampled frame of every camera
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        for frames in samples.values():
            detector.detect([frames[step]])
    naive_wall, naive_cpu = time.perf_counter() - wall, time.process_time() - cpu

    # (b) GridWatch: gate, batch, track, rules, alerts
    owner = {id(img): cid for cid, frames in samples.items() for img in frames}
    recording = RecordingDetector(detector, owner)
    sink = CountingSink()
    pipeline = DetectionPipeline(
        DetectionConfig(model=args.model, batch_size=args.batch, worker_id="bench"), sink, detector=recording
    )
    pipeline.cameras_changed({cid: camera(cid) for cid in samples})
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        t = T0 + timedelta(seconds=step / args.fps)
        frames = [Frame(cid, imgs[step], t, step) for cid, imgs in samples.items()]
        for i in range(0, len(frames), args.batch):
            pipeline.process(frames[i : i + args.batch])
    gw_wall, gw_cpu = time.perf_counter() - wall, time.process_time() - cpu

    still = [cid for cid in samples if cid not in active]
    still_inferred = sum(recording.per_camera.get(cid, 0) for cid in still)
    gated_fraction = still_inferred / max(1, steps * len(still))
    alerted = {a.camera_id for a in sink.alerts if a.kind == "intrusion"}
    missed = sorted(active - alerted)
    false = sorted(alerted - active) + [a.camera_id for a in sink.alerts if a.kind == "tamper"]
    inferences = sum(recording.per_camera.values())
    naive_fps = total / naive_cpu
    gw_fps = total / gw_cpu
    ms_per_inference = 1000 * naive_wall / total

    print(
        f"{len(samples)} cameras ({len(active)} active), {steps} samples each at {args.fps} fps, "
        f"batch {args.batch}"
    )
    print(f"{'path':<22}{'camera-frames':>14}{'inferences':>12}{'CPU s':>9}{'wall s':>9}{'frames/CPU-s':>14}")
    print(f"{'naive predict':<22}{total:>14}{total:>12}{naive_cpu:>9.2f}{naive_wall:>9.2f}{naive_fps:>14.1f}")
    print(f"{'gridwatch':<22}{total:>14}{inferences:>12}{gw_cpu:>9.2f}{gw_wall:>9.2f}{gw_fps:>14.1f}")
    print(f"detector calls (gridwatch): {recording.calls}; gate reasons: {pipeline.counts.gate_reasons}")
    print(
        "still-camera frames reaching the detector: "
        f"{still_inferred}/{steps * len(still)} = {gated_fraction:.3f}"
    )
    print(
        f"intrusion alerts on active cameras: {len(alerted & active)}/{len(active)}; missed {missed}; "
        f"false {false}"
    )
    print(
        json.dumps(
            {
                "naive_fps": round(naive_fps, 2),
                "gridwatch_fps": round(gw_fps, 2),
                "speedup": round(gw_fps / naive_fps, 2),
                "gated_inference_fraction": round(gated_fraction, 4),
                "ms_per_inference": round(ms_per_inference, 1),
                "cpu_ms_per_inference": round(1000 * naive_cpu / total, 1),
                "missed_events": len(missed),
                "false_alerts": len(false),
            }
        )
    )


if __name__ == "__main__":
    main()
