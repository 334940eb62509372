"""Real misbehaving sources for the bad-source tests: a TCP server that speaks no RTSP, an HTTP server that
streams garbage bytes, an HTTP MPEG-TS stream whose video stops while its audio goes on, and an H.264 stream
whose resolution changes mid-stream."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _NoRtsp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        time.sleep(0.5)


class _Garbage(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            self.request.recv(4096)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self.server.closing:  # type: ignore[attr-defined]
                self.request.sendall(os.urandom(16384))
                time.sleep(0.02)
        except OSError:
            pass


def video_then_audio_ts(video_s: float = 1.0, audio_s: float = 60.0) -> bytes:
    """MPEG-TS bytes: `video_s` of 320x180 video next to `audio_s` of audio (silence)."""
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast", "g": "25", "bf": "0"}
        audio = out.add_stream("mp2", rate=48000)
        audio.layout = "mono"
        samples = 1152
        frames_a = int(audio_s * 48000 / samples)
        frames_v = int(video_s * 25)
        vi = 0
        for ai in range(frames_a):
            while vi < frames_v and vi / 25 <= ai * samples / 48000:
                image = np.full((180, 320, 3), (vi * 7) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = vi
                frame.time_base = Fraction(1, 25)
                out.mux(video.encode(frame))
                vi += 1
                if vi == frames_v:
                    out.mux(video.encode(None))
            aframe = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.int16), format="s16", layout="mono")
            aframe.sample_rate = 48000
            aframe.pts = ai * samples
            aframe.time_base = Fraction(1, 48000)
            out.mux(audio.encode(aframe))
        out.mux(audio.encode(None))
    return buf.getvalue()


class _VideoStops(socketserver.BaseRequestHandler):
    """Serves `video_then_audio_ts()` over HTTP at about real time: bytes keep coming, video does not."""

    data = b""
    seconds = 60.0

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            self.request.recv(4096)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
            chunk = 1880
            pause = self.seconds * chunk / max(1, len(self.data))
            for start in range(0, len(self.data), chunk):
                if self.server.closing:  # type: ignore[attr-defined]
                    break
                self.request.sendall(self.data[start : start + chunk])
                time.sleep(pause)
        except OSError:
            pass


class BadServer:
    """`BadServer("nortsp")`, `BadServer("garbage")` or `BadServer("videostops")`; `.port`; `.close()`."""

    def __init__(self, kind: str) -> None:
        if kind == "videostops" and not _VideoStops.data:
            _VideoStops.data = video_then_audio_ts(audio_s=_VideoStops.seconds)
        handler = {"nortsp": _NoRtsp, "garbage": _Garbage, "videostops": _VideoStops}[kind]
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.closing = False  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="bad-server", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.closing = True  # type: ignore[attr-defined]
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolution_change_stream(path: Path, seconds_each: float = 3.0, fps: int = 25) -> Path:
    """An Annex-B H.264 file: 320x180 then 480x270 (new SPS in band), a keyframe every second."""
    chunks = []
    for index, (w, h) in enumerate(((320, 180), (480, 270))):
        part = path.with_suffix(f".{index}.h264")
        with av.open(str(part), "w", format="h264") as out:
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.codec_context.time_base = Fraction(1, fps)
            stream.options = {"preset": "ultrafast", "g": str(fps), "bf": "0", "sc_threshold": "0"}
            for i in range(int(seconds_each * fps)):
                image = np.full((h, w, 3), (i * 7) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        chunks.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(chunks) * 20)
    return path
