"""Remuxing ring packets into MP4: packets read by the real reader from a real RTSP server (GStreamer), for
H.264, H.264 with B-frames and H.265, checked with ffprobe and by decoding every frame's stamped index."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest

from contracts import Camera, Frame
from gridwatch.demo.clips import Scene, loop_clip, make_clip
from ingest.reader import StreamReader
from ingest.remux import RemuxError, remux
from ingest.ring import PacketRing, RingPacket, StreamParams
from tests.ingest.conftest import make_config, wait_until
from tests.support.clipcheck import probe_clip, read_timecodes, timecode_overlay, top_level_boxes
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.integration

FPS = 25
BASE_FRAMES = 8 * FPS  # the stamped index runs 0..199, then the looped clip starts over
PREROLL_S = 4.0
CASES = {  # name: (ffmpeg video options for the transcode of the base clip or None, codec the reader sees)
    "h264": (None, "h264"),
    "h264-bframes": (
        ["-c:v", "libx264", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "2"],
        "h264",
    ),
    "hevc": (
        ["-c:v", "libx265", "-x265-params", "keyint=25:min-keyint=25:bframes=0:log-level=error"],
        "hevc",
    ),
}


def transcode(src: Path, dst: Path, options: list[str]) -> Path:
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), *options, "-pix_fmt", "yuv420p", str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"ffmpeg could not make {dst.name}: {proc.stderr.strip()[:500]}")
    return dst


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case as an MP4 of ~64 s (a 320x180 scene at 25 fps, a keyframe every second, frame index stamped
    into every picture)."""
    root = tmp_path_factory.mktemp("remux-sources")
    scene = Scene(
        width=320, height=180, fps=FPS, seconds=BASE_FRAMES / FPS, overlays=(timecode_overlay(FPS),)
    )
    base = make_clip(root / "base.mp4", scene, gop_seconds=1.0)
    out = {}
    for name, (options, _codec) in CASES.items():
        one = base if options is None else transcode(base, root / f"{name}-base.mp4", options)
        out[name] = loop_clip(one, root / f"{name}.mp4", 8)
    return out


class Listener:
    def on_connected(self, reader: StreamReader) -> None: ...

    def on_sample(self, reader: StreamReader, frame: Frame) -> None: ...

    def on_failure(self, reader: StreamReader, reason: str) -> None: ...

    def on_reconnect(self, reader: StreamReader, delay: float) -> None: ...


@pytest.fixture(scope="module")
def captured(sources: dict[str, Path]) -> Iterator[dict[str, tuple[StreamParams, list[RingPacket]]]]:
    """What the real reader put into a real ring from the RTSP server: a snapshot of each case's ring once
    it holds the pre-roll."""
    server = RtspServer({f"/{name}": path for name, path in sources.items()})
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"RTSP server could not start: {exc}")
    try:
        rings = {name: PacketRing(name, PREROLL_S, 8 << 20) for name in CASES}
        readers = [
            StreamReader(
                Camera(id=name, url=server.url(f"/{name}"), sample_fps=1.0),
                make_config(),
                Listener(),
                threading.Semaphore(8),
                ring=ring,
            )
            for name, ring in rings.items()
        ]
        threads = [threading.Thread(target=r.run, name=f"ingest-{r.camera_id}") for r in readers]
        for thread in threads:
            thread.start()
        try:
            wait_until(
                lambda: all(r.seconds_held >= PREROLL_S + 0.5 for r in rings.values()), 90, "full rings"
            )
            out = {}
            for name, ring in rings.items():
                tap = ring.tap(-1e9, None, 1 << 30, lambda _tap: None)
                assert tap is not None
                out[name] = (tap.params, tap.packets)
        finally:
            for reader in readers:
                reader.stop()
            for thread in threads:
                thread.join(30)
        yield out
    finally:
        server.kill()


@pytest.mark.parametrize("case", list(CASES))
def test_a_remuxed_rtsp_clip_starts_at_a_keyframe_at_zero_with_every_frame(
    case: str, captured: dict[str, tuple[StreamParams, list[RingPacket]]], tmp_path: Path
) -> None:
    params, packets = captured[case]
    assert params.codec == CASES[case][1]
    assert packets[0].key
    path = tmp_path / f"{case}.mp4"
    result = remux(path, params, packets)
    probe = probe_clip(path)
    assert probe.codec == params.codec and (probe.width, probe.height) == (320, 180)
    assert probe.first_frame_key and probe.packets[0].keyframe
    assert probe.first_pts_s == 0.0
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
    # the ring holds the pre-roll plus at most one GOP (1 s) before it
    assert PREROLL_S <= result.duration_s <= PREROLL_S + 1.5
    assert probe.duration_s == pytest.approx(result.duration_s, abs=1 / FPS + 1e-6)
    frames = read_timecodes(path)
    assert len(frames) == result.packets
    # with B-frames, frames shown after one still missing at the cut are left out (at most a mini-GOP)
    assert len(packets) - (2 if case == "h264-bframes" else 0) <= result.packets <= len(packets)
    first = frames[0][1]
    assert first % FPS == 0, "the clip's first frame is one of the source's keyframes"
    for i, (pts_s, index) in enumerate(frames):
        assert index == (first + i) % BASE_FRAMES, f"frame {i} of the clip is not the next source frame"
        assert pts_s == pytest.approx(i / FPS, abs=1e-3)
    assert result.cpu_ms > 0


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_b_frame_clip_cut_anywhere_shows_every_frame_up_to_its_end(
    cut: int, captured: dict[str, tuple[StreamParams, list[RingPacket]]], tmp_path: Path
) -> None:
    """Cut in decode order, a clip can lack B-frames shown before its last packets: those packets go too."""
    params, packets = captured["h264-bframes"]
    path = tmp_path / "cut.mp4"
    result = remux(path, params, packets[:-cut])
    indexes = [index for _, index in read_timecodes(path)]
    assert len(indexes) == result.packets
    assert indexes == [(indexes[0] + i) % BASE_FRAMES for i in range(len(indexes))]


def _strip_parameter_sets(data: bytes | memoryview) -> tuple[bytes, list[bytes]]:
    """Annex B H.264: (the packet without its SPS/PPS, the SPS/PPS it had)."""
    # a NAL never ends in a zero byte (its trailing bits end in a 1): zeros before a start code are the code's
    nals = [n.rstrip(b"\x00") for n in bytes(data).split(b"\x00\x00\x01")]
    kept, sets = [], []
    for nal in filter(None, nals):
        (sets if nal[0] & 0x1F in (7, 8) else kept).append(nal)
    return b"".join(b"\x00\x00\x00\x01" + n for n in kept), sets


def test_parameter_sets_only_in_the_sdp_are_put_in_front_of_the_first_keyframe(
    captured: dict[str, tuple[StreamParams, list[RingPacket]]], tmp_path: Path
) -> None:
    params, packets = captured["h264"]
    stripped, sets = [], []
    for packet in packets:
        data, found = _strip_parameter_sets(packet.data)
        stripped.append(packet._replace(data=data))
        sets = sets or found
    assert sets, "the RTSP server sends SPS/PPS in band"
    extradata = b"".join(b"\x00\x00\x00\x01" + n for n in sets)  # what the SDP's sprop-parameter-sets give
    path = tmp_path / "sdp.mp4"
    remux(path, replace(params, extradata=extradata), stripped)
    assert probe_clip(path).first_frame_key
    assert len(read_timecodes(path)) == len(packets)


@pytest.mark.parametrize("case", ["h264", "hevc"])
def test_a_length_prefixed_source_is_remuxed_too(case: str, sources: dict[str, Path], tmp_path: Path) -> None:
    """A file camera (MP4: avcC/hvcC extradata, length-prefixed packets) through the same path."""
    with av.open(str(sources[case])) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        params = StreamParams(ctx.name, ctx.width, ctx.height, stream.time_base, ctx.extradata)
        packets = []
        for p in container.demux(stream):
            if p.size and p.dts is not None:
                packets.append(RingPacket(bytes(p), p.pts, p.dts, p.is_keyframe, p.duration or 0, 0.0))
            if len(packets) >= 3 * FPS + 5:
                break
    assert params.extradata and params.extradata[:1] == b"\x01"
    start = 2 * FPS  # the third keyframe: timestamps do not start at 0
    path = tmp_path / f"{case}-file.mp4"
    result = remux(path, params, packets[start:])
    probe = probe_clip(path)
    assert probe.first_frame_key and probe.first_pts_s == 0.0 and result.start_pts == packets[start].pts
    assert [index for _, index in read_timecodes(path)] == list(range(start, start + len(packets) - start))


@pytest.mark.parametrize(
    ("codec", "first_key", "message"),
    [("h264", False, "must start at a keyframe"), ("mjpeg", True, "h264 and hevc only")],
)
def test_what_cannot_be_remuxed_says_why(codec: str, first_key: bool, message: str, tmp_path: Path) -> None:
    params = StreamParams(codec, 320, 180, Fraction(1, 90_000), None)
    packets = [RingPacket(b"\x00\x00\x00\x01\x65", 0, 0, first_key, 3600, 0.0)]
    with pytest.raises(RemuxError, match=message):
        remux(tmp_path / "bad.mp4", params, packets)
