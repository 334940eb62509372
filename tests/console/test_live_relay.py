"""The live relay: codec choice, keyframe-aware fan-out, and real WebRTC sessions against a real camera."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from center_api.live import CameraOffline, LiveCodec, LiveRelay, LiveSettings, NoCommonCodec
from center_api.live.relay import choose_codec, offered_codecs
from center_api.live.source import Subscriber
from tests.console.conftest import established_to
from tests.support.rtsp import RtspServer, free_port

SDP_BOTH = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n"


@pytest.mark.parametrize(
    ("offered", "source", "expected"),
    [
        ({"h264", "vp8"}, "h264", LiveCodec.h264),
        ({"vp8"}, "h264", LiveCodec.vp8),
        ({"h264", "vp8"}, "hevc", LiveCodec.vp8),
        ({"vp8", "h264"}, "vp8", LiveCodec.vp8),
    ],
)
def test_choose_codec(offered: set[str], source: str, expected: LiveCodec) -> None:
    assert choose_codec(offered, source) is expected


def test_choose_codec_without_a_common_codec() -> None:
    with pytest.raises(NoCommonCodec):
        choose_codec({"h264"}, "hevc")
    assert choose_codec({"h264", "vp8"}, "h264", prefer_passthrough=False) is LiveCodec.vp8


def test_offered_codecs_reads_rtpmap_lines() -> None:
    assert offered_codecs(SDP_BOTH) == {"vp8", "h264"}


def _packet(keyframe: bool) -> av.Packet:
    packet = av.Packet(b"\x00\x00\x00\x01\x65" if keyframe else b"\x00\x00\x00\x01\x41")
    packet.is_keyframe = keyframe
    return packet


async def test_subscriber_starts_at_a_keyframe_and_skips_to_the_next_on_overflow() -> None:
    sub = Subscriber(LiveCodec.h264, maxsize=4)
    sub.offer(_packet(False))  # joined mid-GOP: nothing until a keyframe
    assert sub.queue.qsize() == 0 and sub.dropped == 1
    for key in (True, False, False, False):
        sub.offer(_packet(key))
    assert sub.queue.full()
    sub.offer(_packet(False))  # overflow: the backlog goes, and so do frames until the next keyframe
    assert sub.queue.qsize() == 0 and sub.need_keyframe
    sub.offer(_packet(True))
    assert sub.queue.qsize() == 1 and not sub.need_keyframe
    sub.offer(None)
    assert sub.queue.qsize() == 2


# -- against a real RTSP camera -----------------------------------------------------------------------


@pytest.fixture
async def relay() -> AsyncIterator[LiveRelay]:
    relay = LiveRelay(LiveSettings(open_timeout_s=10, read_timeout_s=5))
    try:
        yield relay
    finally:
        await relay.close()


class Viewer:
    """A headless WebRTC viewer (aiortc): offers to receive video, collects decoded frames."""

    def __init__(self, codec: str | None = None) -> None:
        self.pc = RTCPeerConnection()
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if codec:
            caps = RTCRtpReceiver.getCapabilities("video")
            assert caps is not None
            transceiver.setCodecPreferences(
                [c for c in caps.codecs if c.mimeType.lower() == f"video/{codec}"]
            )
        self.frames: list[av.VideoFrame] = []
        self._task: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._task = asyncio.ensure_future(self._collect(track))

    async def _collect(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - the track ends when the session closes
                return
            self.frames.append(frame)  # type: ignore[arg-type]

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        if self._task is not None:
            self._task.cancel()


async def until(condition, limit_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_two_viewers_share_one_pull_which_stops_when_both_leave(
    relay: LiveRelay, rtsp_camera: RtspServer
) -> None:
    url = rtsp_camera.url("/cam")
    viewers = [Viewer(), Viewer()]
    try:
        for viewer in viewers:
            session, answer = await relay.open_session("cam-1", url, await viewer.offer())
            assert session.codec is LiveCodec.h264  # passed through, not re-encoded
            await viewer.accept(answer.sdp)
        await until(lambda: all(len(v.frames) >= 10 for v in viewers), 60, "frames at both viewers")
        image = viewers[0].frames[-1].to_ndarray(format="rgb24")
        assert image.shape[:2] == (360, 640) and float(np.std(image)) > 10, "frames are not a real picture"
        assert [s.viewers for s in relay.status()] == [2]
        assert established_to(rtsp_camera.port) == 1, "the camera must be pulled once for all viewers"
        for viewer in viewers:
            await viewer.close()
        await until(lambda: not relay.status(), 10, "the pull to stop after the last viewer left")
        await until(lambda: established_to(rtsp_camera.port) == 0, 10, "the RTSP connection to close")
    finally:
        for viewer in viewers:
            await viewer.close()


@pytest.mark.integration
async def test_vp8_only_viewer_gets_video_encoded_once(relay: LiveRelay, rtsp_camera: RtspServer) -> None:
    viewer = Viewer(codec="vp8")
    try:
        session, answer = await relay.open_session("cam-1", rtsp_camera.url("/cam"), await viewer.offer())
        assert session.codec is LiveCodec.vp8
        await viewer.accept(answer.sdp)
        await until(lambda: len(viewer.frames) >= 10, 60, "VP8 frames")
        assert float(np.std(viewer.frames[-1].to_ndarray(format="rgb24"))) > 10
        await relay.close_session(session.id)
        await until(lambda: not relay.status(), 10, "the pull to stop")
    finally:
        await viewer.close()


@pytest.mark.integration
async def test_offline_camera_is_a_clear_error(relay: LiveRelay) -> None:
    viewer = Viewer()
    try:
        with pytest.raises(CameraOffline, match=r"camera cam-x is offline: cannot open the stream"):
            await relay.open_session("cam-x", f"rtsp://127.0.0.1:{free_port()}/cam", await viewer.offer())
        assert relay.status() == []
    finally:
        await viewer.close()


@pytest.mark.integration
async def test_camera_lost_mid_stream_ends_the_sessions(relay: LiveRelay, rtsp_camera: RtspServer) -> None:
    viewer = Viewer()
    try:
        session, answer = await relay.open_session("cam-1", rtsp_camera.url("/cam"), await viewer.offer())
        await viewer.accept(answer.sdp)
        await until(lambda: len(viewer.frames) >= 5, 60, "frames")
        rtsp_camera.kill()
        await until(lambda: relay.session(session.id) is None, 30, "the session to end with the camera")
        await until(lambda: relay.status() == [], 10, "the pull thread to finish")
    finally:
        await viewer.close()
