"""`LiveRelay`: WebRTC sessions for live view, one `CameraPull` per camera shared by all its viewers.

Its errors are the center's (`center_api.errors`), raised as they are and answered by the app's handler:

    LiveError (any error of the live relay)
     ├── LiveBusy           Unavailable (503 live_busy): too many cameras or viewers
     ├── NoCommonCodec      UnsupportedMediaType (415 no_common_codec): the offer has neither H.264 nor VP8
     └── NegotiationFailed  BadRequest (400 live_negotiation_failed): the offer cannot be answered
    CameraOffline (live.source) Unavailable (503 camera_offline): the stream cannot be opened

A viewer gets the camera's H.264 as it is (no re-encoding) when its offer has H.264; otherwise VP8,
encoded once per camera for all such viewers. The pull stops when the last viewer's session closes:
on `close_session` (the page's hang-up), when the peer connection fails or closes, or when it never
connects within `connect_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from center_api.errors import BadRequest, CenterError, Unavailable, UnsupportedMediaType
from center_api.live.settings import LiveSettings
from center_api.live.source import CameraOffline, CameraPull, LiveCodec, PacketTrack

log = logging.getLogger(__name__)

_RTPMAP = re.compile(r"^a=rtpmap:\d+ ([A-Za-z0-9-]+)/90000", re.MULTILINE)


class LiveError(CenterError):
    """Any error of the live relay; each one also derives from the tree class that gives its status."""


class LiveBusy(LiveError, Unavailable):
    """Too many cameras pulled, or too many viewers of one camera."""

    code = "live_busy"


class NoCommonCodec(LiveError, UnsupportedMediaType):
    """The browser's offer has no video codec the relay can send."""

    code = "no_common_codec"


class NegotiationFailed(LiveError, BadRequest):
    """The offer is malformed or cannot be answered."""

    code = "live_negotiation_failed"


def peer_configuration(settings: LiveSettings) -> RTCConfiguration:
    """The peer connection's ICE servers: exactly the configured ones. An explicit empty list matters:
    with none given, aiortc falls back to a public STUN server, and a police network must call nothing out."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(server.urls),
                username=server.username,
                credential=server.credential.get_secret_value() if server.credential else None,
            )
            for server in settings.ice_servers
        ]
    )


def offered_codecs(sdp: str) -> set[str]:
    """Video codec names (lower case) in an SDP offer."""
    return {name.lower() for name in _RTPMAP.findall(sdp)}


def choose_codec(offered: set[str], source_codec: str, prefer_passthrough: bool = True) -> LiveCodec:
    """Pass the camera's codec through when the browser takes it; else VP8 (re-encoded once)."""
    if prefer_passthrough and source_codec in offered and source_codec in {c.value for c in LiveCodec}:
        return LiveCodec(source_codec)
    if "vp8" in offered:
        return LiveCodec.vp8
    raise NoCommonCodec(f"the browser accepts neither {source_codec} nor VP8 for live video")


@dataclass
class LiveSession:
    id: str
    camera_id: str
    codec: LiveCodec
    pc: RTCPeerConnection
    track: PacketTrack
    pull: CameraPull
    created_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class PullStatus:
    camera_id: str
    viewers: int
    source_codec: str | None
    packets: int
    running: bool


class LiveRelay:
    def __init__(self, settings: LiveSettings | None = None) -> None:
        self.settings = settings or LiveSettings()
        self._pulls: dict[str, CameraPull] = {}
        self._sessions: dict[str, LiveSession] = {}
        self._closing: set[CameraPull] = set()  # stopped pulls whose threads are still winding down
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- sessions ----------------------------------------------------------------------------------------

    async def open_session(
        self, camera_id: str, url: str, sdp: str, kind: str = "offer"
    ) -> tuple[LiveSession, RTCSessionDescription]:
        """Answer a browser's offer for `camera_id`'s live video; `url` is the camera's stream URL."""
        offered = offered_codecs(sdp)
        if not offered & {"h264", "vp8"}:
            raise NoCommonCodec("the offer has no H.264 or VP8 video")
        pull = await self._pull_for(camera_id, url)
        if pull.viewers >= self.settings.max_viewers_per_camera:
            raise LiveBusy(f"camera {camera_id} already has {pull.viewers} viewers")
        codec = choose_codec(offered, pull.source_codec or "", self.settings.prefer_passthrough)
        track = pull.subscribe(codec)
        pc = RTCPeerConnection(peer_configuration(self.settings))
        session = LiveSession(secrets.token_urlsafe(16), camera_id, codec, pc, track, pull)
        self._sessions[session.id] = session
        try:
            sender = pc.addTrack(track)
            mime = f"video/{codec.value}"
            codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == mime]
            transceiver = next(t for t in pc.getTransceivers() if t.sender is sender)
            transceiver.setCodecPreferences(codecs)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, RuntimeError, StopIteration) as exc:
            await self.close_session(session.id)
            raise NegotiationFailed(f"cannot negotiate live video: {exc}") from None

        @pc.on("connectionstatechange")
        async def _state() -> None:
            log.info("live: session %s camera_id=%s state=%s", session.id[:8], camera_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close_session(session.id)

        self._spawn(self._watch_connect(session))
        log.info("live: viewer joined camera_id=%s codec=%s viewers=%d", camera_id, codec, pull.viewers)
        return session, pc.localDescription

    async def close_session(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        session.track.stop()  # unsubscribes; the last one stops the pull
        await session.pc.close()
        log.info("live: viewer left camera_id=%s session=%s", session.camera_id, session_id[:8])
        return True

    def session(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    async def _watch_connect(self, session: LiveSession) -> None:
        await asyncio.sleep(self.settings.connect_timeout_s)
        if session.id in self._sessions and session.pc.connectionState != "connected":
            log.warning("live: session %s camera_id=%s never connected", session.id[:8], session.camera_id)
            await self.close_session(session.id)

    # -- pulls -------------------------------------------------------------------------------------------

    async def _pull_for(self, camera_id: str, url: str) -> CameraPull:
        pull = self._pulls.get(camera_id)
        if pull is None or pull.ended:
            if len(self._pulls) >= self.settings.max_cameras:
                raise LiveBusy(f"live view is already pulling {len(self._pulls)} cameras")
            pull = CameraPull(camera_id, url, self.settings, asyncio.get_running_loop(), self._pull_idle)
            self._pulls[camera_id] = pull
        try:
            await pull.start()  # concurrent viewers of a new camera all wait on the same open
        except CameraOffline:
            self._forget(pull)
            await pull.join()  # the failed open's thread is ending: nothing may linger after the error
            raise
        return pull

    def _pull_idle(self, pull: CameraPull) -> None:
        """The pull lost its last viewer or its stream: forget it and end its sessions."""
        self._forget(pull)
        if pull.ended:
            for session in [s for s in self._sessions.values() if s.pull is pull]:
                self._spawn(self.close_session(session.id))

    def _forget(self, pull: CameraPull) -> None:
        if self._pulls.get(pull.camera_id) is pull:
            del self._pulls[pull.camera_id]
        pull.stop()
        if pull.running:
            self._closing.add(pull)
            self._spawn(self._reap(pull))

    async def _reap(self, pull: CameraPull) -> None:
        await pull.join()
        self._closing.discard(pull)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- status and shutdown -----------------------------------------------------------------------------

    def status(self) -> list[PullStatus]:
        """Every pull with an open RTSP connection (including ones winding down after their last viewer)."""
        pulls = list(self._pulls.values()) + [p for p in self._closing if p.running]
        return [
            PullStatus(p.camera_id, p.viewers, p.source_codec, p.packets, p.running)
            for p in pulls
            if p.running
        ]

    async def close(self) -> None:
        """End every session and pull and wait for the pull threads (the app's shutdown)."""
        for session_id in list(self._sessions):
            await self.close_session(session_id)
        pulls = list(self._pulls.values()) + list(self._closing)
        self._pulls.clear()
        for pull in pulls:
            pull.stop()
        for pull in pulls:
            await pull.join()
        self._closing.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
