"""What the clip tests read out of an MP4: ffprobe's view of it, its top-level boxes, and a timecode.

    probe = probe_clip(path)            ffprobe: codec, size, duration, packets (time, keyframe), first frame
    top_level_boxes(path)               ["ftyp", "moov", "mdat", ...]: faststart puts moov before mdat
    Scene(overlays=(timecode_overlay(fps),))   stamps each source frame's index into the picture
    read_timecodes(path)                [(pts_s, source frame index), ...] of every frame of a clip
    jpeg_timecode(snapshot)             the source frame index an alert's snapshot shows

A clip is cut by remuxing, so every frame of it is a source frame: the timecode says which one, and so
where in the source stream the clip starts (the clip's own timestamps start at 0).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

TIMECODE_BITS = 14  # frame indexes up to 16,383 (27 minutes at 10 fps)
TIMECODE_BLOCK = 16  # pixels per bit (at 640 wide): large blocks survive any quantiser and JPEG
TIMECODE_TOP = 40  # below the label an alert snapshot writes at the top left, above any person's box
TIMECODE_WIDTH = 640  # the frame width the positions above are for; other widths scale them


@dataclass(frozen=True)
class Packet:
    pts_s: float
    dts_s: float
    keyframe: bool
    size: int


@dataclass(frozen=True)
class ClipProbe:
    format_name: str
    codec: str
    width: int
    height: int
    duration_s: float  # of the video stream
    packets: tuple[Packet, ...]
    first_frame_key: bool  # the first decoded frame is a keyframe (an I picture)
    first_frame_type: str

    @property
    def keyframe_times_s(self) -> tuple[float, ...]:
        return tuple(p.pts_s for p in self.packets if p.keyframe)

    @property
    def first_pts_s(self) -> float:
        return min(p.pts_s for p in self.packets)


def ffprobe_path() -> str:
    path = shutil.which("ffprobe")
    if path is None:
        raise FileNotFoundError(
            "ffprobe is not installed (apt-get install -y ffmpeg); the clip tests need it"
        )
    return path


def _ffprobe(path: Path, *args: str) -> dict:
    proc = subprocess.run(
        [ffprobe_path(), "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"ffprobe cannot read {path.name}: {proc.stderr.strip()[:500]}")
    return json.loads(proc.stdout)


def probe_clip(path: Path) -> ClipProbe:
    """ffprobe's reading of the clip's first video stream (raises AssertionError if it cannot read it)."""
    info = _ffprobe(
        path,
        "-select_streams",
        "v:0",
        "-show_entries",
        "format=format_name:stream=codec_name,width,height,duration:packet=pts_time,dts_time,flags,size",
        "-show_packets",
    )
    streams = info.get("streams") or []
    if not streams:
        raise AssertionError(f"{path.name} has no video stream")
    stream = streams[0]
    packets = tuple(
        Packet(
            pts_s=float(p.get("pts_time", p.get("dts_time", "nan"))),
            dts_s=float(p.get("dts_time", "nan")),
            keyframe="K" in p.get("flags", ""),
            size=int(p.get("size", 0)),
        )
        for p in info.get("packets", [])
    )
    first = _ffprobe(
        path,
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "frame=key_frame,pict_type",
        "-show_frames",
    ).get("frames") or [{}]
    return ClipProbe(
        format_name=info["format"]["format_name"],
        codec=stream["codec_name"],
        width=int(stream["width"]),
        height=int(stream["height"]),
        duration_s=float(stream.get("duration", "nan")),
        packets=packets,
        first_frame_key=str(first[0].get("key_frame")) == "1",
        first_frame_type=str(first[0].get("pict_type", "?")),
    )


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (a faststart file has `moov` before `mdat`)."""
    names: list[str] = []
    with path.open("rb") as fh:
        size_total = path.stat().st_size
        offset = 0
        while offset + 8 <= size_total:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", fh.read(8))
            elif size == 0:
                size = size_total - offset
            if size < 8:
                raise AssertionError(f"{path.name}: box {kind!r} at {offset} has size {size}")
            names.append(kind.decode("latin-1"))
            offset += size
    return names


def timecode_overlay(fps: float) -> Callable[[np.ndarray, float], None]:
    """A `Scene` overlay that writes the frame's index (round(t * fps)) as black and white blocks in the upper
    left, over the facades: away from a zone on the right, from people's boxes and from a snapshot's label."""

    def overlay(frame: np.ndarray, t: float) -> None:
        index = round(t * fps)
        k = frame.shape[1] / TIMECODE_WIDTH
        top, block = round(TIMECODE_TOP * k), round(TIMECODE_BLOCK * k)
        for bit in range(TIMECODE_BITS):
            on = (index >> (TIMECODE_BITS - 1 - bit)) & 1
            x = round((4 + bit * TIMECODE_BLOCK) * k)
            frame[top : top + block, x : x + block] = 255 if on else 0

    return overlay


def timecode_of(gray: np.ndarray) -> int:
    """Inverse of `timecode_overlay` on a frame's luma plane (or a snapshot's grey picture, any width)."""
    k = gray.shape[1] / TIMECODE_WIDTH
    value = 0
    y = round((TIMECODE_TOP + TIMECODE_BLOCK / 2) * k)
    r = max(1, round(3 * k))
    for bit in range(TIMECODE_BITS):
        x = round((4 + bit * TIMECODE_BLOCK + TIMECODE_BLOCK / 2) * k)
        patch = gray[y - r : y + r + 1, x - r : x + r + 1]
        value = (value << 1) | int(float(patch.mean()) > 128)
    return value


def jpeg_timecode(jpeg: bytes) -> int:
    """The frame index stamped in a JPEG (an alert's snapshot of a stamped clip)."""
    gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise AssertionError("not a JPEG")
    return timecode_of(gray)


def read_timecodes(path: Path) -> list[tuple[float, int]]:
    """Every frame of the clip: (its presentation time in seconds, the source frame index stamped in it)."""
    out: list[tuple[float, int]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None or frame.time_base is None:
                raise AssertionError(f"{path.name}: a frame without a timestamp")
            gray = frame.to_ndarray(format="gray")
            out.append((float(frame.pts * frame.time_base), timecode_of(gray)))
    out.sort()
    return out
