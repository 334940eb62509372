"""One RTSP pull per camera, fanned out to every viewer of that camera.

    CameraPull (one thread: PyAV demux; H.264 packets passed through as they come; VP8 encoded once,
        │       only while some viewer needs it)
        ├── Subscriber (bounded queue; on overflow skips to the next keyframe) ── PacketTrack ── viewer 1
        └── Subscriber ── PacketTrack ── viewer 2 ...

The pull thread never touches asyncio objects: it hands each packet to the event loop with
`call_soon_threadsafe`, and the loop side owns the subscriber set. The thread stops (and closes the RTSP
connection) when `stop()` is called, i.e. when the last viewer has left.

aiortc's `MediaPlayer`/`MediaRelay` are not used here on purpose: the relay's unbuffered mode drops
packets on a burst (fatal for passed-through H.264, which needs every frame until the next keyframe), its
buffered mode has an unbounded queue, it never stops its source when the last consumer leaves, and neither
can encode once for many viewers. The track handed to aiortc is still a `MediaStreamTrack` that yields
`av.Packet`s, which aiortc's sender packetizes without re-encoding.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from center_api.errors import Unavailable
from center_api.live.settings import LiveSettings
from contracts import describe_stream_error, stream_input

log = logging.getLogger(__name__)

RTP_CLOCK = Fraction(1, 90_000)
REALTIME_FORMATS = {"rtsp", "rtp", "sdp", "v4l2", "udp", "hls"}
# What opening or reading a stream raises; ValueError too: PyAV decodes a junk stream's metadata as UTF-8.
_OPEN_ERRORS = (av.FFmpegError, OSError, ValueError)


class LiveCodec(StrEnum):
    h264 = "h264"
    vp8 = "vp8"


class CameraOffline(Unavailable):
    """The camera's stream could not be opened or gave no video in time (HTTP 503, `camera_offline`).

    `reason` must already be free of credentials (`contracts.describe_stream_error` makes it so): the message
    goes to the browser.
    """

    code = "camera_offline"

    def __init__(self, camera_id: str, reason: str) -> None:
        super().__init__(f"camera {camera_id} is offline: {reason}")
        self.camera_id = camera_id
        self.reason = reason


class Subscriber:
    """One viewer's bounded packet queue; lives on the event loop thread."""

    def __init__(self, codec: LiveCodec, maxsize: int) -> None:
        self.codec = codec
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize)
        self.need_keyframe = True
        self.dropped = 0

    def offer(self, packet: av.Packet | None) -> None:
        if packet is None:  # end of stream: make room for the marker
            while self.queue.full():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        if self.queue.full():
            # A slow viewer: drop what it has not sent yet and resume at a keyframe (a decoder fed a
            # gap before then shows garbage).
            while not self.queue.empty():
                self.queue.get_nowait()
                self.dropped += 1
            self.need_keyframe = True
        if self.need_keyframe and not packet.is_keyframe:
            self.dropped += 1
            return
        self.need_keyframe = False
        self.queue.put_nowait(packet)


class PacketTrack(MediaStreamTrack):
    """A video track of encoded packets for one viewer; stopping it unsubscribes the viewer."""

    kind = "video"

    def __init__(self, pull: CameraPull, subscriber: Subscriber) -> None:
        super().__init__()
        self._pull: CameraPull | None = pull
        self._subscriber = subscriber

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._subscriber.queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        super().stop()
        if self._pull is not None:
            pull, self._pull = self._pull, None
            pull.unsubscribe(self._subscriber)


class _Vp8Transcoder:
    """Decode once, encode VP8 once, for all viewers that cannot take the camera's own codec."""

    def __init__(self, stream: av.video.stream.VideoStream, settings: LiveSettings) -> None:
        self._stream = stream
        self._settings = settings
        self._encoder: av.video.codeccontext.VideoCodecContext | None = None
        self._synced = False  # decoding starts at a keyframe
        self._frames = 0

    def reset(self) -> None:
        self._synced = False

    def transcode(self, packet: av.Packet) -> list[av.Packet]:
        if not self._synced:
            if not packet.is_keyframe:
                return []
            self._synced = True
        out: list[av.Packet] = []
        for frame in self._stream.codec_context.decode(packet):
            if self._encoder is None or (frame.width, frame.height) != (
                self._encoder.width,
                self._encoder.height,
            ):
                self._encoder = self._new_encoder(frame.width, frame.height)
            pts = frame.pts if frame.pts is not None else 0
            tb = frame.time_base or self._stream.time_base or RTP_CLOCK
            frame = frame.reformat(format="yuv420p")
            frame.pts = int(pts * tb / RTP_CLOCK)
            frame.time_base = RTP_CLOCK
            fps = float(self._stream.average_rate or 25)
            if self._frames % max(1, round(fps * self._settings.vp8_keyframe_s)) == 0:
                frame.pict_type = av.video.frame.PictureType.I
            self._frames += 1
            for encoded in self._encoder.encode(frame):
                encoded.time_base = RTP_CLOCK
                out.append(encoded)
        return out

    def _new_encoder(self, width: int, height: int) -> av.video.codeccontext.VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = RTP_CLOCK
        codec.bit_rate = self._settings.vp8_bitrate
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "error-resilient": "1",
        }
        codec.thread_count = 2
        return codec


def _has_parameter_sets(data: bytes) -> bool:
    """True when an Annex B access unit carries an SPS (NAL type 7)."""
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        if index + 3 < len(data) and data[index + 3] & 0x1F == 7:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False


class CameraPull:
    """Pulls one camera's stream in a thread and fans packets out to subscribers on `loop`."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        settings: LiveSettings,
        loop: asyncio.AbstractEventLoop,
        on_idle: Callable[[CameraPull], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._url = url
        self._settings = settings
        self._loop = loop
        self._on_idle = on_idle
        self._subscribers: set[Subscriber] = set()
        self._vp8_wanted = False  # read by the thread; written on the loop
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened: asyncio.Future[str] = loop.create_future()  # source codec name, or exception
        self._linger: asyncio.TimerHandle | None = None
        self.source_codec: str | None = None
        self.ended = False
        self.end_reason: str | None = None
        self.packets = 0

    # -- loop side -------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Open the stream and wait for its first video packet; returns the source codec name.

        Raises `CameraOffline` when that does not happen within `open_timeout_s`.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"live-{self.camera_id}", daemon=True)
            self._thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(self._opened), self._settings.open_timeout_s + 2)
        except TimeoutError:
            self.stop()
            raise CameraOffline(self.camera_id, "no video within the open timeout") from None

    @property
    def viewers(self) -> int:
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def subscribe(self, codec: LiveCodec) -> PacketTrack:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        subscriber = Subscriber(codec, self._settings.viewer_queue)
        self._subscribers.add(subscriber)
        self._vp8_wanted = any(self._transcoded(s) for s in self._subscribers)
        return PacketTrack(self, subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._vp8_wanted = any(self._transcoded(s) for s in self._subscribers)
        if not self._subscribers and not self.ended:
            if self._settings.linger_s > 0:
                self._linger = self._loop.call_later(self._settings.linger_s, self._idle)
            else:
                self._idle()

    def _idle(self) -> None:
        self._linger = None
        if self._subscribers:
            return
        log.info("live: last viewer left, stopping pull camera_id=%s", self.camera_id)
        self.stop()
        if self._on_idle is not None:
            self._on_idle(self)

    def stop(self) -> None:
        """Ask the thread to stop; it closes the RTSP connection at its next packet or read timeout."""
        self._quit.set()

    async def join(self, wait_s: float = 15.0) -> None:
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, wait_s)

    def _transcoded(self, subscriber: Subscriber) -> bool:
        return subscriber.codec.value != self.source_codec

    def _deliver(self, packet: av.Packet, transcoded: bool) -> None:
        for subscriber in tuple(self._subscribers):
            if self._transcoded(subscriber) == transcoded:
                subscriber.offer(packet)

    def _opened_ok(self, codec: str) -> None:
        self.source_codec = codec
        if not self._opened.done():
            self._opened.set_result(codec)

    def _finished(self, reason: str | None) -> None:
        self.ended = True
        self.end_reason = reason
        if not self._opened.done():
            self._opened.set_exception(CameraOffline(self.camera_id, reason or "stream ended"))
        for subscriber in tuple(self._subscribers):
            subscriber.offer(None)
        if self._on_idle is not None:
            self._on_idle(self)

    def _post(self, callback: Callable[..., None], *args: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is watching any more
            self._quit.set()
            return False
        return True

    # -- thread side -----------------------------------------------------------------------------------

    def _run(self) -> None:
        reason: str | None = None
        # The ingest reader's options, but no probing delay: the first packet should reach the viewer at
        # once. Reads are bounded by PyAV's read timeout (a few streams here, so its per-check cost is fine).
        settings = self._settings
        source = stream_input(
            self._url, probesize=settings.probesize, analyzeduration_us=settings.analyzeduration_us
        )
        timeout = (self._settings.open_timeout_s, self._settings.read_timeout_s)
        try:
            container = av.open(source.url, options=source.options, timeout=timeout)
        except _OPEN_ERRORS as exc:
            self._post(self._finished, f"cannot open the stream ({describe_stream_error(exc, self._url)})")
            return
        try:
            reason = self._pump(container)
        except _OPEN_ERRORS as exc:
            reason = f"stream lost ({describe_stream_error(exc, self._url)})"
        finally:
            container.close()
            log.info("live: pull closed camera_id=%s reason=%s", self.camera_id, reason or "stopped")
            self._post(self._finished, reason)

    def _pump(self, container: av.container.InputContainer) -> str | None:
        if not container.streams.video:
            return "the stream has no video"
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        passthrough = codec in {c.value for c in LiveCodec}
        extradata = bytes(stream.codec_context.extradata or b"")
        bsf = None
        if codec == "h264" and extradata[:1] == b"\x01":  # avcC (MP4 file): WebRTC needs Annex B
            bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        annexb_sps = extradata if codec == "h264" and extradata[:1] != b"\x01" else b""
        transcoder = _Vp8Transcoder(stream, self._settings)
        pace = not set(container.format.name.split(",")) & REALTIME_FORMATS
        started = time.monotonic()
        first_pts: float | None = None
        opened = False
        for raw in container.demux(stream):
            if self._quit.is_set():
                return None
            if raw.pts is None or raw.size == 0:
                continue
            if pace:  # a file: send it at its own speed, as a camera would
                at = float(raw.pts * raw.time_base)
                first_pts = at if first_pts is None else first_pts
                delay = started + (at - first_pts) - time.monotonic()
                if delay > 0 and self._quit.wait(min(delay, 1.0)):
                    return None
            if not opened:
                opened = self._post(self._opened_ok, codec)
            self.packets += 1
            if passthrough:
                for packet in bsf.filter(raw) if bsf is not None else [raw]:
                    if annexb_sps and packet.is_keyframe and not _has_parameter_sets(bytes(packet)):
                        # Parameter sets came only in the SDP: a viewer joining here needs them in-band.
                        fixed = av.Packet(annexb_sps + bytes(packet))
                        fixed.pts, fixed.dts, fixed.time_base = packet.pts, packet.dts, packet.time_base
                        fixed.is_keyframe = True
                        packet = fixed
                    self._post(self._deliver, packet, False)
            if self._vp8_wanted:
                for packet in transcoder.transcode(raw):
                    self._post(self._deliver, packet, True)
            else:
                transcoder.reset()
        return "the stream ended"
