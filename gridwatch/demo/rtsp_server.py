"""A real RTSP server (GStreamer's gst-rtsp-server) that serves H.264 or H.265 MP4 clips without re-encoding.

Run it with the system Python that has PyGObject and the GStreamer RTSP server typelib (on Debian:
`python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad`):

    /usr/bin/python3 rtsp_server.py --port 8554 --mount /cam1=clip.mp4 [--mount /cam2=other.mp4]

It prints `READY <port>` on stdout once it listens. Each client gets its own pipeline from the start of
the clip (unshared media); a stream ends with its clip (see `clips.loop_clip` for long streams).
This file imports nothing of GridWatch: it runs outside the project's virtual environment.
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( filesrc location={path} ! qtdemux ! {codec}parse config-interval=-1 ! rtp{codec}pay name=pay0 pt=96 )"
)


def codec_of(path: str) -> str:
    """h265 if the MP4's `moov` describes an H.265 track (an `hvcC` record), else h264."""
    with open(path, "rb") as fh:
        while header := fh.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                (size,) = struct.unpack(">Q", fh.read(8))
                size -= 8
            if kind == b"moov":
                return "h265" if b"hvcC" in fh.read(size - 8) else "h264"
            if size < 8:
                break
            fh.seek(size - 8, 1)
    return "h264"


def factory_for(path: str) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH.format(path=path, codec=codec_of(path)))
    factory.set_shared(False)
    return factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mount", action="append", default=[], help="/path=clip.mp4 (repeatable)")
    args = parser.parse_args()
    if not args.mount:
        parser.error("at least one --mount /path=clip.mp4 is needed")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        mount, _, path = spec.partition("=")
        if not mount.startswith("/") or not path:
            parser.error(f"bad --mount {spec!r}: expected /path=clip.mp4")
        mounts.add_factory(mount, factory_for(path))
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
