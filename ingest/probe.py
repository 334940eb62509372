"""`probe(url)`: what a camera sends (codec, size, fps, keyframe interval, bitrate), from its packets.

The stream is opened with the same input options as the reader (`contracts.stream_input`), and a failure
is described by `contracts.describe_stream_error`: the message names the redacted URL, never a credential.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import av
import av.error

from contracts import describe_stream_error, join_credentials, redact_url, split_credentials, stream_input
from ingest.reader import _seconds
from ingest.sampling import StreamStats

# What opening or reading a stream raises; ValueError too: PyAV decodes a junk stream's metadata as UTF-8.
_OPEN_ERRORS = (av.error.FFmpegError, OSError, ValueError)


class ProbeError(RuntimeError):
    """The stream could not be opened or read; the message has no credentials."""


@dataclass(frozen=True)
class StreamInfo:
    url: str  # redacted
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    keyframe_interval: float | None  # seconds
    bitrate_kbps: float | None
    packets: int
    seconds: float  # how long the probe read

    def describe(self) -> str:
        def f(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        return (
            f"{self.url}: {self.codec or '?'} {self.width or '?'}x{self.height or '?'} "
            f"{f(self.fps, '.2f')} fps, keyframe every {f(self.keyframe_interval, '.2f')} s, "
            f"{f(self.bitrate_kbps, '.0f')} kbit/s ({self.packets} packets in {self.seconds:.1f} s)"
        )


def probe(url: str, timeout_s: float = 10) -> StreamInfo:
    """Read packets (no decoding) until three keyframes are seen or `timeout_s` passes.

    `url` may carry credentials in any form a camera's URL may; they are split out and joined again as the
    registry does (`contracts.split_credentials`, `join_credentials`), so the probe opens what a reader of
    that camera opens (a raw `/`, `#` or `?` in a password percent-encoded).
    """
    started = time.monotonic()
    clean, creds = split_credentials(url)
    url = join_credentials(clean, creds.username, creds.password, dict(creds.params))
    spec = stream_input(url, socket_timeout_s=timeout_s)
    stats = StreamStats(window_s=max(timeout_s, 10.0))
    packets = keyframes = 0
    try:
        container = av.open(spec.url, "r", options=spec.options, timeout=(timeout_s, timeout_s))
    except _OPEN_ERRORS as exc:
        raise ProbeError(f"{redact_url(url)}: {describe_stream_error(exc, url)}") from None
    try:
        if not container.streams.video:
            raise ProbeError(f"{redact_url(url)}: no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                t = _seconds(packet.pts if packet.pts is not None else packet.dts, stream.time_base)
                packets += 1
                stats.packet(t if t is not None else time.monotonic(), packet.size, bool(packet.is_keyframe))
                keyframes += bool(packet.is_keyframe)
                if keyframes >= 3 or time.monotonic() - started > timeout_s:
                    break
        except _OPEN_ERRORS as exc:
            if packets == 0:
                raise ProbeError(f"{redact_url(url)}: {describe_stream_error(exc, url)}") from None
        fps = stats.fps
        if fps is None and stream.average_rate:
            fps = float(stream.average_rate)
        return StreamInfo(
            url=redact_url(url),
            codec=ctx.name,
            width=ctx.width or None,
            height=ctx.height or None,
            fps=fps,
            keyframe_interval=stats.keyframe_interval,
            bitrate_kbps=stats.bitrate_kbps,
            packets=packets,
            seconds=time.monotonic() - started,
        )
    finally:
        container.close()
