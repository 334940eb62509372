"""Reading a camera with PyAV: open a stream, demux it, decode only what sampling needs.

A `StreamReader` runs on its own thread (`run()`): connect, read, hand sampled frames to its listener,
and on any failure report the reason and reconnect with capped exponential backoff and full jitter. Opening
takes a slot of a worker-wide semaphore, so an outage that heals does not become a reconnect storm.

Input options and error reasons come from `contracts.streams`, as for every other opener: reasons and log
lines never carry the URL's credentials.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Protocol

import av
import av.error
import numpy as np

from contracts import Camera, Frame, StreamInput, describe_stream_error, scrub, stream_input
from ingest.config import IngestConfig
from ingest.ring import PacketRing, StreamParams
from ingest.sampling import Sampler, SamplingMode, StreamStats, backoff_delay

log = logging.getLogger(__name__)

MAX_DECODE_ERRORS = 50  # consecutive undecodable packets before the stream counts as broken


class StreamFailure(Exception):
    """A stream ended or broke; `str()` is the reason shown in health (no credentials)."""


class ReaderListener(Protocol):
    def on_connected(self, reader: StreamReader) -> None: ...

    def on_sample(self, reader: StreamReader, frame: Frame) -> None: ...

    def on_failure(self, reader: StreamReader, reason: str) -> None: ...

    def on_reconnect(self, reader: StreamReader, delay: float) -> None: ...


def source_spec(url: str, open_timeout_s: float, read_timeout_s: float) -> StreamInput:
    """The reader's input options (`contracts.stream_input`), with FFmpeg's socket timeout set.

    That timeout (`timeout`, µs) is what catches a silent socket while reading: a read that gets no byte for
    that long fails with an I/O error (PyAV's `timeout=` only bounds the open, see
    `StreamReader._read_once`). It also applies during the open, so it is never shorter than the open
    timeout: PyAV's open timeout fires first there, with its clearer reason.
    """
    return stream_input(url, socket_timeout_s=max(open_timeout_s, read_timeout_s))


def describe_error(exc: BaseException, url: str) -> str:
    """A short reason for health and logs, without the URL or its credentials."""
    if isinstance(exc, StreamFailure):
        return scrub(str(exc), url)[:300]  # the reader's own words, scrubbed all the same
    return describe_stream_error(exc, url)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


class StreamReader:
    """Reads one camera until `stop()`; reconnects on failure. Thread target: `run`."""

    def __init__(
        self,
        camera: Camera,
        config: IngestConfig,
        listener: ReaderListener,
        open_gate: threading.Semaphore,
        decode_threads: Callable[[], int] = lambda: 1,
        rng: random.Random | None = None,
        ring: PacketRing | None = None,
    ) -> None:
        self.camera = camera
        self.ring = ring  # the pre-roll ring (clips on): every video packet goes in
        self.config = config
        self.listener = listener
        self.open_gate = open_gate
        self.decode_threads = decode_threads
        self.rng = rng or random.Random()
        self.stats = StreamStats()
        self.sampler = Sampler(camera.sample_fps)
        self.connected = False
        self.last_packet_at: float | None = None  # monotonic
        self.width: int | None = None
        self.height: int | None = None
        self.codec: str | None = None
        self.decode_cpu_s = 0.0
        self.samples = 0
        self.decode_errors = 0
        self._stop = threading.Event()
        self._failures = 0

    @property
    def camera_id(self) -> str:
        return self.camera.id

    @property
    def mode(self) -> SamplingMode:
        return self.sampler.mode

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        url = self.camera.stream_url()  # credentials joined in here only; a secret
        while not self._stop.is_set():
            try:
                self._read_once(url)
                if self._stop.is_set():
                    break
                reason = "end of stream"
            except av.error.ExitError:  # PyAV's timeout interrupted a blocking open
                if self._stop.is_set():
                    break
                if self.connected:
                    reason = f"stalled: no data for {self._idle():.0f} s"
                else:
                    reason = f"open timed out after {self.config.open_timeout_s:.0f} s"
            except (av.error.FFmpegError, OSError, StreamFailure, ValueError, RuntimeError) as exc:
                if self._stop.is_set():
                    break
                reason = describe_error(exc, url)
                if self.connected and not isinstance(exc, StreamFailure) and self._timed_out():
                    # FFmpeg's socket timeout: the socket stayed open and silent (e.g. a frozen server)
                    reason = f"stalled: no data for {self._idle():.0f} s ({reason})"
            finally:
                self.connected = False
            if self.ring is not None:
                self.ring.disconnect(reason)  # recordings are cut with what they have
            self.listener.on_failure(self, reason)
            delay = backoff_delay(
                self._failures, self.config.backoff_initial_s, self.config.backoff_max_s, self.rng
            )
            self._failures += 1
            self.listener.on_reconnect(self, delay)
            if self._stop.wait(delay):
                break

    def _read_timeout(self) -> float:
        """No video packet for this long while bytes still arrive (other streams) -> the reader gives up."""
        return min(self.config.read_timeout_s, self.config.stall_timeout_s)

    def _idle(self) -> float:
        return time.monotonic() - self.last_packet_at if self.last_packet_at is not None else 0.0

    def _timed_out(self) -> bool:
        # an I/O error after this long without a packet is FFmpeg's socket timeout, not a broken stream
        return self._idle() >= 0.9 * min(self._read_timeout(), self.config.open_timeout_s)

    def _read_once(self, url: str) -> None:
        spec = source_spec(url, self.config.open_timeout_s, self._read_timeout())
        with self.open_gate:  # worker-wide cap on streams opening at once
            if self._stop.is_set():
                return
            # PyAV's timeout only while opening. A read timeout there would make PyAV take the GIL and read
            # the clock on each of FFmpeg's I/O interrupt checks (~2,400/s per RTSP/TCP stream); reads are
            # bounded by FFmpeg's socket timeout instead (see `source_spec`) and by the video check in
            # `_demux`.
            container = av.open(
                spec.url, "r", options=spec.options, timeout=(self.config.open_timeout_s, None)
            )
        try:
            self._demux(container, spec.paced)
        finally:
            container.close()

    def _demux(self, container: Any, paced: bool) -> None:
        if not container.streams.video:
            raise StreamFailure("no video stream")
        stream = container.streams.video[0]
        stream_ctx = stream.codec_context
        self.codec = stream_ctx.name
        self.width, self.height = stream_ctx.width or None, stream_ctx.height or None
        time_base = stream.time_base
        tb = float(time_base) if time_base else 0.0
        ring = self.ring if time_base else None  # no time base, no timestamps to cut a clip by
        if ring is not None:
            params = StreamParams(
                stream_ctx.name, self.width, self.height, Fraction(time_base), stream_ctx.extradata
            )
            ring.reset(params, time.time() - time.monotonic())
        self.stats.clear()
        self.sampler.reset()
        decoder: Any = None
        decoder_mode: SamplingMode | None = None
        self.connected = True
        self.last_packet_at = time.monotonic()
        self.decode_errors = 0
        announced = False
        pace_origin: tuple[float, float] | None = None
        # raw elementary streams carry no timestamps: count packets at the stream's nominal rate instead
        nominal_rate = float(stream.average_rate or stream.guessed_rate or 25)
        count = 0
        index = stream.index
        no_video_limit = self._read_timeout()
        # Demux every stream: packets of other streams (audio) return control here, so a stream whose bytes
        # keep coming but whose video stopped is caught (`demux(stream)` would loop inside PyAV).
        for packet in container.demux():
            if self._stop.is_set():
                return
            if packet.size == 0:  # a flush packet: the demuxer reached the end
                continue
            now = time.monotonic()
            if packet.stream_index != index:
                if now - self.last_packet_at > no_video_limit:
                    raise StreamFailure(f"stalled: no video for {now - self.last_packet_at:.0f} s")
                continue
            self.last_packet_at = now
            pts, dts = packet.pts, packet.dts
            ts = pts if pts is not None else dts
            t = ts * tb if ts is not None and tb else None  # float, not Fraction: this runs for every packet
            if t is None:
                t = count / nominal_rate
            count += 1
            key = bool(packet.is_keyframe)
            if ring is not None:
                if dts is not None:  # RTSP's first packets may have none: the ring waits for a keyframe
                    # a view, not a copy: the ring keeps the demuxer's own buffer (a fresh one per packet)
                    ring.add(memoryview(packet), ts, dts, key, packet.duration or 0, now)
                else:
                    ring.skip()
            self.stats.packet(t if t is not None else now, packet.size, key)
            if paced and t is not None:
                pace_origin = self._pace(pace_origin, t)
            if key:
                self.sampler.set_keyframe_interval(self.stats.keyframe_interval)
            if not self.sampler.should_decode(t, key):
                continue
            if decoder is None or decoder_mode is not self.sampler.mode:
                decoder, decoder_mode = self._new_decoder(stream_ctx, self.sampler.mode), self.sampler.mode
            frames = self._decode(decoder, packet)
            for frame in frames:
                ft = frame.pts * tb if frame.pts is not None and packet.pts is not None and tb else t
                if not self.sampler.should_emit(ft, key):
                    continue
                if not announced:
                    announced = True
                    self._failures = 0
                    self.listener.on_connected(self)
                self._emit(frame, ft, key)
        if not announced and self.stats.fps is None:
            raise StreamFailure("stream ended before any packet")

    def _pace(self, origin: tuple[float, float] | None, t: float) -> tuple[float, float]:
        """Play a file at its own speed, so a clip behaves like a camera."""
        now = time.monotonic()
        if origin is None or t < origin[1]:
            return (now, t)
        wait = origin[0] + (t - origin[1]) - now
        if wait > 0:
            self._stop.wait(min(wait, 5.0))
        return origin

    def _new_decoder(self, template: Any, mode: SamplingMode) -> Any:
        ctx = av.CodecContext.create(template.name, "r")
        if template.extradata:
            ctx.extradata = template.extradata
        if mode is SamplingMode.keyframes:
            # Only due keyframes reach this decoder; skip anything else defensively and never wait for
            # reordering (one frame in, one frame out).
            ctx.skip_frame = "NONKEY"
            ctx.thread_count = 1
            ctx.flags |= av.codec.context.Flags.low_delay
            if self.config.keyframe_skip_loop_filter:
                # No deblocking: ~9% less decode CPU; an intra frame has no later frame to drift into.
                ctx.options = {"skip_loop_filter": "all"}
        else:
            threads = self.config.decode_threads or self.decode_threads()
            ctx.thread_type = "SLICE" if threads > 1 else "NONE"
            ctx.thread_count = threads
        log.debug("camera %s: decoding %s with %s", self.camera.id, mode.value, template.name)
        return ctx

    def _decode(self, decoder: Any, packet: Any) -> list[Any]:
        started = time.thread_time()
        try:
            frames = decoder.decode(packet)
        except av.error.InvalidDataError:
            self.decode_errors += 1
            if self.decode_errors >= MAX_DECODE_ERRORS:
                raise StreamFailure(
                    f"undecodable stream ({self.decode_errors} bad packets in a row)"
                ) from None
            return []
        finally:
            self.decode_cpu_s += time.thread_time() - started
        if frames:
            self.decode_errors = 0
        return frames

    def _emit(self, frame: Any, t: float | None, key: bool) -> None:
        picture = DecodedPicture(frame)
        self.width, self.height = picture.width, picture.height
        self.samples += 1
        self.stats.sample(time.monotonic())
        captured_at = datetime.now(UTC)
        if self.ring is not None and t is not None:
            self.ring.mark(captured_at.timestamp(), t)  # maps an alert's captured_at to stream time
        sample = Frame(
            camera_id=self.camera.id,
            picture=picture,
            captured_at=captured_at,
            seq=self.samples,
            pts=t,
            keyframe=key or bool(getattr(frame, "key_frame", False)),
        )
        self.listener.on_sample(self, sample)


# Luma planes read in place by `DecodedPicture.grey` (the first plane is Y at full resolution).
_LUMA_FORMATS = frozenset(
    ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray")
)
# Limited ("TV", 16-235) luma to full range, so grey levels match a BGR->grey conversion of the same picture.
_TV_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


class DecodedPicture:
    """A decoded frame kept in the decoder's YUV (a `contracts.Picture`).

    BGR is made on first use, on the caller's thread, by one swscale pass (~0.7 ms at 1080p): the motion gate
    needs only luminance, so a sample that is never inferred is never converted. The frame holds its own
    reference to the decoder's buffer, so it stays valid after the decoder moves on or closes.
    """

    __slots__ = ("_bgr", "_frame", "height", "width")

    def __init__(self, frame: Any) -> None:
        self._frame = frame
        self._bgr: np.ndarray[Any, Any] | None = None
        self.width = int(frame.width)
        self.height = int(frame.height)

    def bgr(self) -> np.ndarray[Any, Any]:
        if self._bgr is None:
            # threads=1: the default starts a pool of scaler threads per call, dearer than the conversion
            self._bgr = self._frame.to_ndarray(format="bgr24", threads=1)
        return self._bgr

    def grey(self, step: int) -> np.ndarray[Any, Any] | None:
        frame = self._frame
        if frame.format.name not in _LUMA_FORMATS:
            return None
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: self.height, : self.width]
        small = np.ascontiguousarray(luma[:: max(1, step), :: max(1, step)])
        # yuvj* formats, or color_range 2 (AVCOL_RANGE_JPEG), are full range already
        full_range = frame.format.name.startswith("yuvj") or getattr(frame, "color_range", 0) == 2
        return small if full_range or frame.format.name == "gray" else _TV_TO_FULL[small]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
