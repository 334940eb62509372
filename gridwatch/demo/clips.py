"""Make H.264 clips of real people moving along scripted paths, from images Ultralytics ships.

The people are cut out of `bus.jpg` (full-body pedestrians) and pasted over a synthetic street-like
background, so a real detector sees real people. Positions are the bottom-center of the person, in
normalized image coordinates, interpolated linearly between waypoints `(t, x, y)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

# Pedestrians in Ultralytics' bus.jpg (810x1080), (x1, y1, x2, y2) as the shared YOLOv8n finds them.
BUS_PEOPLE = ((50, 398, 244, 903), (221, 408, 343, 856), (672, 372, 810, 879))


def ultralytics_asset(name: str) -> Path:
    """Path of an image that the installed Ultralytics package ships (`bus.jpg`, `zidane.jpg`)."""
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / name
    if not path.is_file():
        raise FileNotFoundError(f"Ultralytics does not ship {name} at {path}")
    return path


@cache
def person_sprite(index: int = 0) -> np.ndarray:
    image = cv2.imread(str(ultralytics_asset("bus.jpg")))
    if image is None:
        raise RuntimeError("could not read Ultralytics' bus.jpg")
    x1, y1, x2, y2 = BUS_PEOPLE[index % len(BUS_PEOPLE)]
    return image[y1:y2, x1:x2].copy()


def background(width: int, height: int, seed: int = 7) -> np.ndarray:
    """A still street-like scene: sky, facades with windows, pavement; deterministic per seed."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(height * 0.45)
    img[:horizon] = (200, 170, 140)
    img[horizon:] = (95, 100, 105)
    x = 0
    while x < width:
        w = int(rng.integers(width // 10, width // 5))
        top = int(rng.integers(height // 12, horizon - height // 10))
        color = tuple(int(c) for c in rng.integers(60, 200, 3))
        cv2.rectangle(img, (x, top), (x + w, horizon), color, -1)
        for wy in range(top + 8, horizon - 12, max(12, height // 24)):
            for wx in range(x + 6, x + w - 10, max(14, width // 40)):
                cv2.rectangle(img, (wx, wy), (wx + 6, wy + 8), (40, 40, 60), -1)
        x += w + int(rng.integers(2, 12))
    for yy in range(horizon + 10, height, max(6, height // 18)):
        cv2.line(img, (0, yy), (width, yy), (110, 115, 120), 1)
    return img


@dataclass(frozen=True)
class Walker:
    """One person following waypoints `(t_seconds, x, y)`; `height` is the sprite height / frame height."""

    path: tuple[tuple[float, float, float], ...]
    height: float = 0.55
    sprite: int = 0

    def position(self, t: float) -> tuple[float, float] | None:
        pts = self.path
        if t < pts[0][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(pts, pts[1:], strict=False):
            if t0 <= t <= t1:
                a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
        return pts[-1][1], pts[-1][2]


@dataclass(frozen=True)
class Scene:
    width: int = 640
    height: int = 360
    fps: int = 10
    seconds: float = 20.0
    walkers: tuple[Walker, ...] = ()
    seed: int = 7
    noise: float = 0.0  # std-dev of per-frame Gaussian noise, grey levels
    overlays: tuple = field(default=())  # callables (frame, t) -> None for tampering and the like


def paste(frame: np.ndarray, sprite: np.ndarray, cx: float, bottom: float, height: float) -> None:
    h, w = frame.shape[:2]
    sh = max(8, int(height * h))
    sw = max(4, int(sprite.shape[1] * sh / sprite.shape[0]))
    scaled = cv2.resize(sprite, (sw, sh), interpolation=cv2.INTER_AREA)
    x1, y2 = int(cx * w - sw / 2), int(bottom * h)
    y1 = y2 - sh
    fx1, fy1, fx2, fy2 = max(0, x1), max(0, y1), min(w, x1 + sw), min(h, y2)
    if fx1 >= fx2 or fy1 >= fy2:
        return
    frame[fy1:fy2, fx1:fx2] = scaled[fy1 - y1 : fy2 - y1, fx1 - x1 : fx2 - x1]


def render(scene: Scene, t: float, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    frame = base.copy()
    for walker in scene.walkers:
        pos = walker.position(t)
        if pos is not None:
            paste(frame, person_sprite(walker.sprite), pos[0], pos[1], walker.height)
    if scene.noise:
        noise = rng.normal(0, scene.noise, frame.shape)
        frame = np.clip(frame.astype(np.int16) + noise.astype(np.int16), 0, 255).astype(np.uint8)
    for overlay in scene.overlays:
        overlay(frame, t)
    return frame


def make_clip(
    path: Path,
    scene: Scene,
    *,
    gop_seconds: float = 1.0,
    bitrate: int | None = None,
    preset: str = "veryfast",
) -> Path:
    """Encode `scene` as H.264 MP4 at `path` (keyframe every `gop_seconds`, no B-frames); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    base = background(scene.width, scene.height, scene.seed)
    rng = np.random.default_rng(scene.seed)
    gop = max(1, round(scene.fps * gop_seconds))
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=scene.fps)
        stream.width, stream.height, stream.pix_fmt = scene.width, scene.height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, scene.fps)
        opts: dict[str, object] = {
            "preset": preset,
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "0",
        }
        if bitrate:
            stream.bit_rate = bitrate
        else:
            opts["crf"] = "26"
        stream.options = opts
        for i in range(int(scene.seconds * scene.fps)):
            image = render(scene, i / scene.fps, base, rng)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.replace(path)
    log.info(
        "made clip %s (%dx%d, %d fps, %.0f s)", path.name, scene.width, scene.height, scene.fps, scene.seconds
    )
    return path


def loop_clip(src: Path, dst: Path, times: int) -> Path:
    """Concatenate `src` `times` times into `dst` without re-encoding (packets copied, times shifted)."""
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        packets = [p for p in inp.demux(in_stream) if p.dts is not None]
        span = (packets[-1].pts or 0) + (packets[-1].duration or 1) - (packets[0].pts or 0)
        for i in range(times):
            for packet in packets:
                packet.stream = out_stream
                pts, dts = packet.pts, packet.dts
                assert dts is not None  # only packets with a dts were kept
                # A packet without a pts keeps none (the muxer derives it from the dts) instead of failing.
                packet.pts, packet.dts = (None if pts is None else pts + i * span), dts + i * span
                out.mux(packet)
                packet.pts, packet.dts = pts, dts
    tmp.replace(dst)
    return dst


def demo_scene(seconds: float = 60.0) -> Scene:
    """A person walks from the left pavement into the right half (the demo zone) and stays there."""
    walker = Walker(path=((0.0, 0.12, 0.92), (4.0, 0.30, 0.92), (8.0, 0.72, 0.95), (seconds, 0.74, 0.95)))
    return Scene(seconds=seconds, walkers=(walker,))


def quiet_scene(seconds: float = 20.0) -> Scene:
    """A person walks on the left pavement and never enters the right half."""
    walker = Walker(path=((0.0, 0.08, 0.92), (seconds / 2, 0.30, 0.92), (seconds, 0.10, 0.92)))
    return Scene(seconds=seconds, walkers=(walker,))
